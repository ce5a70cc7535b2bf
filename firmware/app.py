# Wiring: one meter built from a board description and its HAL.
# The shell (a device main loop or the simulator) calls step(now_ms) whenever
# pulses may have arrived and at the latest by next_wake(); nothing here reads
# a clock or a pin by itself.

from firmware import policy, tariff
from firmware.auth import Auth
from firmware.billclock import BillingClock
from firmware.eventlog import EventLog
from firmware.ledger import Ledger, Rejected
from firmware.meter import Meter, mwh
from firmware.relay import RelayController
from firmware.schema import KEEP_ON_RESET, defaults
from firmware.settings import Settings
from firmware.standing import BillingCalendar
from firmware.tokendesk import TokenDesk

RELAY_MODES = ("auto", "open", "closed")


class MeterApp:
    def __init__(self, board, hal, sink, now_ms=0, new_credit=None, new_price=None,
                 wall_s=None):
        """hal: .ledger_flash, .settings_flash, .log_flash (block devices),
        .pulses (.count()), .relay (.set(closed) / .pulse(closed, ms)),
        .indicator (.show(state)). sink(event, now_ms) gets every event after
        it is logged. wall_s: the true time now if a time source has it."""
        self.board = board
        self.hal = hal
        self.sink = sink
        self.boot_ms = now_ms
        self.sync = None      # a firmware.sync.Sync registers itself here
        self.settings = Settings(hal.settings_flash, defaults(board))
        self.log = EventLog(hal.log_flash)
        price = board.PRICE_PER_KWH if new_price is None else new_price
        self.ledger = Ledger(
            hal.ledger_flash, imp_per_kwh=board.IMP_PER_KWH, price_per_kwh=price,
            initial_credit=board.INITIAL_CREDIT if new_credit is None else new_credit,
            loss_bound_mwh=self.settings.get("loss_bound_mwh"))
        if not self.settings.get("tariffs"):
            self.settings.save({"tariffs": [{"version": 1, "activate": 0, "kind": "flat",
                                             "price": self.ledger.price,
                                             "standing_per_day": 0}]})
        self.auth = Auth(self.settings, now_ms)
        self.tokens = TokenDesk(self, now_ms)
        self.meter = Meter(self.ledger.imp)
        self.meter.update(hal.pulses.count(), now_ms)
        lg = self.ledger
        self.clock = BillingClock(lg.time_s, now_ms, False)
        self.credit_state = None
        self.calendar = BillingCalendar(self)
        self._load_friendly()
        s = self.settings
        self.relay = RelayController(hal.relay, self.emit, board.RELAY_KIND,
                                     s.get("relay_pulse_ms"),
                                     s.get("relay_min_interval_s") * 1000)
        self.relay.restore(s.get("relay_state"))
        self.emit({"event": "boot", "new": lg.created, "credit": lg.credit,
                   "pulses": lg.pulses}, now_ms)
        if lg.damage:
            # flash went bad under a record (not a cut): recovered from the next
            # checkpoint, but a technician must know (selftest fails until cleared)
            self.alarm("ledger", now_ms, "damaged")
            self.emit({"event": "error", "value": len(lg.damage),
                       "detail": "ledger damaged"}, now_ms)
        if wall_s is not None:
            self.sync_clock(wall_s, now_ms, decide=False)
        # The relay state at boot comes from the ledger, the policy and the
        # persisted relay state, never from a default.
        self.calendar.check(now_ms)
        self._decide("boot", now_ms)

    # -- events --------------------------------------------------------------

    def emit(self, ev, now_ms):
        """Log an event in flash, then hand it on."""
        k = ev["event"]
        if k == "relay":
            value, detail = 0, ev["relay"] + ":" + ev["reason"]
        elif k in ("topup", "topup_rejected"):
            value, detail = ev["amount"], ev["ref"]
        else:
            value, detail = ev.get("value", ev.get("credit", 0)), ev.get("detail", "")
        try:
            self.log.append(k, self.clock.now(now_ms), value, detail)
        except OSError as e:
            self.alarm("flash", now_ms, str(e))
        self.sink(ev, now_ms)

    @property
    def alarms(self):
        return self.settings.get("alarms")

    def alarm(self, name, now_ms, detail=""):
        """Raise an alarm; it stays (across reboots) until a technician clears it."""
        if name not in self.alarms:
            try:
                self.settings.save({"alarms": self.alarms + [name]})
            except OSError:
                pass   # the alarm still reaches the sink below
        self.sink({"event": "error", "detail": ("%s %s" % (name, detail)).strip()}, now_ms)

    def clear_alarms(self, now_ms):
        cleared = ",".join(self.alarms) or "none"
        if self.alarms:
            self.settings.save({"alarms": []})
        self.emit({"event": "alarms_cleared", "detail": cleared}, now_ms)
        return cleared

    # -- time and tariffs ------------------------------------------------------

    def local(self, wall_s):
        return wall_s + self.settings.get("tz_offset_min") * 60

    def tariffs(self):
        return self.settings.get("tariffs")

    def tariff_now(self, wall_s):
        return tariff.in_force(self.tariffs(), wall_s) or self.tariffs()[0]

    def price_now(self, now_ms):
        """The price per kWh the next pulse would be billed at."""
        t = self.clock.now(now_ms)
        return tariff.price(self.tariff_now(t), self.local(t), self.ledger.month_pulses,
                            self.ledger.imp)

    def sync_clock(self, wall_s, now_ms, decide=True):
        """A time source says it is wall_s (firmware/standing.py)."""
        delta = self.calendar.synced(wall_s, now_ms)
        if decide:
            self._decide("clock", now_ms)
        return delta

    def next_wake(self, now_ms):
        """The latest time the shell must call step() again: the next whole
        minute of the billing clock (tariff switches, friendly periods and
        midnight all fall on minutes), or a deferred relay switch."""
        t = self.clock.now(now_ms)
        wake = now_ms + (60 - t % 60) * 1000
        r = self.relay.next_wake()
        return r if r is not None and r < wake else wake

    # -- metering ------------------------------------------------------------

    def _load_friendly(self):
        s = self.settings
        self._friendly_cfg = (policy.parse_period(s.get("friendly_nights")),
                              s.get("friendly_weekends"), policy.parse_holidays(s.get("holidays")))

    def _friendly(self, wall_s):
        n, w, h = self._friendly_cfg
        return policy.in_friendly(n, w, h, self.local(wall_s))

    def _policy_state(self, now_ms):
        """The credit state now (ok while PAYG is off by token)."""
        s, lg = self.settings, self.ledger
        if lg.payg_off:
            return "ok"
        return policy.credit_state(lg.credit, lg.emergency, s.get("low_credit"),
                                   s.get("low_clear"), self.credit_state,
                                   self._friendly(self.clock.now(now_ms)))

    def _decide(self, reason, now_ms):
        s, lg = self.settings, self.ledger
        state = self._policy_state(now_ms)
        if state != self.credit_state:
            if self.credit_state is not None or state != "ok":
                self.emit({"event": "low_credit" if state == "low" else "credit_state",
                           "credit": lg.credit, "detail": state}, now_ms)
            self.credit_state = state
            self.hal.indicator.show(state)
        # A friendly period keeps a closed relay closed; it does not
        # reconnect one that was already cut.
        allowed = policy.supply_allowed(state) and (
            state != "friendly" or self.relay.state == "closed")
        before = self.relay.state, self.relay.closed
        # PAYG turned off by token: the supply is simply on (no button to press)
        self.relay.decide(allowed, s.get("relay_mode"),
                          "auto" if lg.payg_off else s.get("reconnect"), reason, now_ms)
        if (self.relay.state, self.relay.closed) != before:
            self.meter.forget_power()
            if self.relay.state != s.get("relay_state"):
                s.save({"relay_state": self.relay.state})

    def step(self, now_ms):
        lg = self.ledger
        t = self.clock.now(now_ms)
        self.calendar.check(now_ms)
        n = self.meter.update(self.hal.pulses.count(), now_ms)
        if n:
            tf = self.tariff_now(t)
            local = self.local(t)
            for _ in range(n):
                p = 0 if lg.payg_off else tariff.price(tf, local, lg.month_pulses, lg.imp)
                if p != lg.price:
                    lg.set_price(p)
                lg.consume(1)
        lg.note_time(t, self.clock.synced)
        s = self.settings
        self.relay.check_power(self.meter.power_w(now_ms), s.get("max_power_w"),
                               s.get("max_power_window_s") * 1000, now_ms)
        self._decide("credit", now_ms)
        return n

    # -- operations used by the command layer -----------------------------------

    def check_limits(self, amount, credit_after):
        """The operator's limits (0: none): the largest top-up, the most credit
        a meter may hold. Rejected says which and why."""
        s = self.settings
        most, cap = s.get("max_topup"), s.get("max_credit")
        if most and amount > most:
            raise Rejected("top-up %d is above the maximum top-up %d" % (amount, most))
        if cap and credit_after > cap:
            raise Rejected("credit would be %d, above the maximum credit %d"
                           % (credit_after, cap))

    def topup(self, ref, amount, now_ms, vseq=None):
        s = self.settings
        try:
            if isinstance(amount, int):
                self.check_limits(amount, self.ledger.credit + amount)
            credit = self.ledger.topup(ref, amount, s.get("debt_share_pct"), s.get("debt_cap"),
                                       vseq)
        except Rejected as e:
            self.emit({"event": "topup_rejected", "ref": ref, "amount": amount,
                       "reason": str(e)}, now_ms)
            raise
        self.emit({"event": "topup", "ref": ref, "amount": amount,
                   "credit": credit}, now_ms)
        self._decide("topup", now_ms)
        return credit

    def cancel_vend(self, ref, now_ms, vseq=None):
        """A vend the head-end gives up on: it may never be credited here.
        Rejected (and logged) if the reference was applied or cancelled."""
        try:
            self.ledger.cancel(ref, vseq)
        except Rejected as e:
            self.emit({"event": "topup_rejected", "ref": ref, "amount": 0,
                       "reason": str(e)}, now_ms)
            raise
        self.emit({"event": "vend_cancelled", "detail": ref}, now_ms)

    def enter_token(self, text, now_ms):
        """A customer's OpenPAYGO token (firmware/tokendesk.py): (kind name,
        credit added or set), or ValueError saying why it was refused."""
        return self.tokens.enter(text, now_ms)

    def take_emergency(self, now_ms):
        """Emergency credit: once, when enabled and credit is below the
        threshold; it becomes debt repaid first from the next top-up."""
        s, lg = self.settings, self.ledger
        amount = s.get("emergency_credit")
        if not amount:
            raise ValueError("emergency credit is not enabled on this meter")
        if lg.emergency > 0:
            raise ValueError("emergency credit already taken; top up first")
        if lg.credit >= s.get("emergency_threshold"):
            raise ValueError("emergency credit is only for credit below %d"
                             % s.get("emergency_threshold"))
        lg.take_emergency(amount)
        self.emit({"event": "emergency", "value": amount}, now_ms)
        self._decide("emergency", now_ms)
        return lg.credit

    def button(self, now_ms):
        """The customer's button: reconnects a READY relay; resets a trip
        after its hold-off; otherwise asks for emergency credit."""
        r = self.relay
        if r.state == "ready":
            r.button(now_ms)
            self.emit({"event": "button", "detail": "reconnect"}, now_ms)
        elif r.state == "tripped":
            held = now_ms - (r.tripped_at or 0) >= self.settings.get("trip_holdoff_s") * 1000
            if not held:
                self.emit({"event": "button", "detail": "trip hold-off"}, now_ms)
                return "hold-off"
            self.reset_trip(now_ms, "button")
            if r.state == "ready":
                r.button(now_ms)     # the press that reset the trip also confirms
        else:
            try:
                self.take_emergency(now_ms)
            except ValueError:
                self.emit({"event": "button", "detail": "nothing to do"}, now_ms)
                return None
        self._decide("button", now_ms)
        return r.state

    def reset_trip(self, now_ms, by="technician"):
        allowed = policy.supply_allowed(self._policy_state(now_ms))
        if not self.relay.reset_trip(now_ms, allowed, self.settings.get("reconnect")):
            raise ValueError("the relay is not tripped")
        self.emit({"event": "trip_reset", "detail": by}, now_ms)
        self._decide("reset", now_ms)

    def set_relay_mode(self, mode, now_ms):
        if mode not in RELAY_MODES:
            raise ValueError("relay mode must be open, closed or auto")
        self.settings.save({"relay_mode": mode})
        self.emit({"event": "config", "detail": "relay_mode=" + mode}, now_ms)
        self._decide("auto" if mode == "auto" else "manual", now_ms)

    def set_meter_constant(self, imp, now_ms):
        self.ledger.set_meter_constant(imp)
        self.meter = Meter(imp)
        self.meter.update(self.hal.pulses.count(), now_ms)
        self.emit({"event": "meter_constant", "value": imp}, now_ms)

    def add_tariff(self, t, now_ms):
        """Install a tariff (checked); it takes over at its activation time.
        Its version must be above every version the meter has."""
        t = tariff.validate(t)
        have = self.tariffs()
        if have and t["version"] <= max(x["version"] for x in have):
            raise ValueError("tariff version must be above %d"
                             % max(x["version"] for x in have))
        wall = self.clock.now(now_ms)
        keep = [x for x in have + [t] if x["activate"] > wall]
        cur = tariff.in_force(have + [t], wall)
        if cur is not None:
            keep.insert(0, cur)
        self.settings.save({"tariffs": keep})
        self.emit({"event": "tariff", "value": t["version"], "detail": t["kind"]}, now_ms)
        self.step(now_ms)
        return t

    def factory_reset(self, now_ms):
        keep = {k: self.settings.get(k) for k in KEEP_ON_RESET}
        self.settings.save(keep, replace=True)
        self.emit({"event": "factory_reset"}, now_ms)
        self.refresh(now_ms)

    def refresh(self, now_ms):
        """Apply settings again after they changed wholesale (factory reset)."""
        s = self.settings
        self._load_friendly()
        self.calendar.day = None
        self.ledger.set_loss_bound(s.get("loss_bound_mwh"))
        self.relay.min_interval_ms = s.get("relay_min_interval_s") * 1000
        self.relay.pulse_ms = s.get("relay_pulse_ms")
        self.auth = Auth(s, now_ms)
        self._decide("auto", now_ms)

    def verify_ledger(self):
        """None if the ledger on flash says what RAM says, else why not."""
        if "ledger" in self.alarms:
            return "damaged flash records were found at boot (alarm ledger)"
        self.ledger.flush()
        lg = self.ledger
        on_flash = Ledger(self.hal.ledger_flash)
        if on_flash.damage:
            return "damaged flash records at %r" % (on_flash.damage,)
        for k in ("credit", "pulses", "billed", "topups", "rem", "price", "imp", "debt"):
            if getattr(on_flash, k) != getattr(lg, k):
                return "%s differs between flash and RAM" % k
        lg.ring = on_flash.ring    # that boot may have opened a fresh sector
        return None

    def verify_settings(self):
        fresh = Settings(self.hal.settings_flash, self.settings.defaults)
        self.settings.ring = fresh.ring
        return None if fresh.items() == self.settings.items() else "settings differ"

    def status(self, now_ms):
        lg = self.ledger
        closed = self.relay.closed
        return {"energy_mwh": mwh(lg.pulses, lg.imp), "credit": lg.credit,
                "relay": "closed" if closed else "open",
                "power_w": self.meter.power_w(now_ms) if closed else 0,
                "pulses": lg.pulses, "price": self.price_now(now_ms),
                "state": self.credit_state,
                "relay_state": self.relay.state, "wall": self.clock.now(now_ms)}
