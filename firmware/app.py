# Wiring: one meter built from a board description and its HAL.
# The shell (a device main loop or the simulator) calls step(now_ms) whenever
# pulses may have arrived and at the latest by next_wake(); nothing here reads
# a clock or a pin by itself.

from firmware import policy, tariff, transient
from firmware.billclock import BillingClock
from firmware.billing import Billing, BillingCalendar
from firmware.calendar import DAY
from firmware.eventlog import Events
from firmware.ledger import Ledger, Rejected
from firmware.meter import mwh
from firmware.relay import AUTO, BOOT, CLOCK, CREDIT, TOPUP
from firmware.settings import Settings
from firmware.supply import Supply


class MeterApp:
    """The facade the shells and the command layer use. Its parts, each one
    concern: events (log, alarms), billing (pulses, tariffs), calendar (days,
    months, time syncs), supply (credit state, relay), tokens (OpenPAYGO
    entry); money in (top-ups, cancelled vends) and the checks are here."""

    def __init__(self, board, hal, sink, now_ms=0, new_credit=None, new_price=None,
                 wall_s=None):
        """hal: .ledger_flash, .settings_flash, .log_flash (block devices),
        .pulses (.count()), .relay (.set(closed) / .pulse(closed, ms)),
        .indicator (.show(state)). sink(event, now_ms) gets every event after
        it is logged. wall_s: the true time now if a time source has it."""
        self.board = board
        self.hal = hal
        self.boot_ms = now_ms
        self.sync = None      # a firmware.sync.Sync registers itself here
        # True: wake at every minute whatever changes (the reference the
        # computed wakes are tested against, tests/test_batch.py)
        self.minute_wakes = False
        self.settings = s = Settings(hal.settings_flash,
                                         transient.call("firmware.schema", "defaults", board))
        price = board.PRICE_PER_KWH if new_price is None else new_price
        self.ledger = lg = Ledger(
            hal.ledger_flash, imp_per_kwh=board.IMP_PER_KWH, price_per_kwh=price,
            initial_credit=board.INITIAL_CREDIT if new_credit is None else new_credit,
            loss_bound_mwh=s.get("loss_bound_mwh"))
        self.clock = BillingClock(lg.time_s, now_ms, False)
        self.events = ev = Events(hal.log_flash, s, self.clock, sink)
        self.log, self.emit, self.alarm = ev.log, ev.emit, ev.alarm
        # the technician PIN and the token desk load on first use (RAM)
        self._auth, self._tokens, self._since = None, None, now_ms
        self.billing = b = Billing(self, now_ms)
        self.local, self.tariffs, self.tariff_now = b.local, b.tariffs, b.tariff_now
        self.add_tariff = b.add_tariff
        self.calendar = BillingCalendar(self)
        self.supply = sp = Supply(self)
        self.relay = sp.relay
        self.button, self.take_emergency, self.reset_trip = sp.button, sp.take_emergency, \
            sp.reset_trip
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
        sp.decide(BOOT, now_ms)
        self.network_settings()

    @property
    def credit_state(self):
        return self.supply.state

    @property
    def auth(self):
        """The technician PIN and its lockout (firmware/auth.py); its wait after
        wrong PINs runs from boot (or the last refresh), as if made then."""
        if self._auth is None:
            from firmware.auth import Auth
            self._auth = Auth(self.settings, self._since)
        return self._auth

    def enter_token(self, text, now_ms):
        """A customer's OpenPAYGO token (firmware/tokendesk.py)."""
        if self._tokens is None:
            from firmware.tokendesk import TokenDesk
            self._tokens = TokenDesk(self, self.boot_ms)
        return self._tokens.enter(text, now_ms)

    def sync_clock(self, wall_s, now_ms, decide=True):
        """A time source says it is wall_s (BillingCalendar, firmware/billing.py)."""
        delta = self.calendar.synced(wall_s, now_ms)
        if decide:
            self.supply.decide(CLOCK, now_ms)
        return delta

    def next_wake(self, now_ms):
        """The latest time the shell must call step() again: the first
        millisecond at which anything billing or the supply reads from the
        billing clock may change (local midnight: standing charges, months,
        weekends, holidays; a TOU step; a friendly period's start or end; a
        tariff's activation; the next clock save; every minute while a power
        limit is watched), or a deferred relay switch. Pulses between two wakes
        may be billed in one step at the last of them (docs/architecture.md)."""
        c = self.clock
        t = c.now(now_ms)
        if self.minute_wakes or self.settings.get("max_power_w"):
            due = t + 60 - t % 60
        else:
            local = self.local(t)
            due = t + DAY - local % DAY
            for d in (tariff.next_change(self.tariff_now(t), local),
                      policy.next_change(self.supply.friendly_nights(), local)):
                if d is not None and t + d < due:
                    due = t + d
        save = self.ledger.clock_due()
        if t < save < due:
            due = save
        for tf in self.tariffs():
            if t < tf["activate"] < due:
                due = tf["activate"]
        wake = c.ms_at(due)
        r = self.relay.next_wake()
        return r if r is not None and r < wake else wake

    def step(self, now_ms):
        """Bill what the pulse counter has, then decide the supply."""
        self.calendar.check(now_ms)
        n = self.billing.bill(now_ms)
        self.supply.check_power(now_ms)
        self.supply.decide(CREDIT, now_ms)
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
        self.supply.decide(TOPUP, now_ms)
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

    def factory_reset(self, now_ms):
        self.settings.save(transient.call("firmware.schema", "kept", self.settings),
                           replace=True)
        self.emit({"event": "factory_reset"}, now_ms)
        self.refresh(now_ms)

    def refresh(self, now_ms):
        """Apply settings again after they changed wholesale (factory reset)."""
        s = self.settings
        self.supply.configure()
        self.calendar.day = None
        self.ledger.set_loss_bound(s.get("loss_bound_mwh"))
        self._auth, self._since = None, now_ms
        self.supply.decide(AUTO, now_ms)
        self.network_settings()

    def network_settings(self):
        """WiFi and MQTT settings to the drivers now, not at the next boot:
        the WiFi set here wins over the board file's; the sync reconnects."""
        s = self.settings
        wifi = getattr(self.hal, "wifi", None)
        if s.get("wifi_ssid") and wifi is not None:
            wifi.configure(s.get("wifi_ssid"), s.get("wifi_pass"))
        sync = self.sync
        if sync is not None:
            from firmware.sync import link_settings
            sync.configure(*link_settings(self))

    def verify_ledger(self):
        """None if the ledger on flash says what RAM says, else why not."""
        if "ledger" in self.events.alarms:
            return "damaged flash records were found at boot (alarm ledger)"
        self.ledger.flush()
        lg = self.ledger
        on_flash = Ledger(self.hal.ledger_flash)
        if on_flash.damage:
            return "damaged flash records at %r" % (on_flash.damage,)
        for k in ("credit", "pulses", "billed", "topups", "rem", "price", "imp", "debt"):
            if getattr(on_flash, k) != getattr(lg, k):
                return "%s differs between flash and RAM" % k
        lg.journal = on_flash.journal    # that boot may have opened a fresh sector
        return None

    def verify_settings(self):
        fresh = Settings(self.hal.settings_flash, self.settings.defaults)
        self.settings.journal = fresh.journal
        return None if fresh.items() == self.settings.items() else "settings differ"

    def status(self, now_ms):
        lg = self.ledger
        closed = self.relay.closed
        return {"energy_mwh": mwh(lg.pulses, lg.imp), "credit": lg.credit,
                "relay": "closed" if closed else "open",
                "power_w": self.billing.meter.power_w(now_ms) if closed else 0,
                "pulses": lg.pulses, "price": self.billing.price_now(now_ms),
                "state": self.credit_state,
                "relay_state": self.relay.state, "wall": self.clock.now(now_ms)}
