# Wiring: one meter built from a board description and its HAL.
# The shell (a device main loop or the simulator) calls step(now_ms) whenever
# pulses may have arrived; nothing here reads a clock or a pin by itself.

from firmware.auth import Auth
from firmware.eventlog import EventLog
from firmware.ledger import Ledger, Rejected
from firmware.meter import Meter, mwh
from firmware.policy import supply_allowed
from firmware.relay import RelayController
from firmware.settings import Settings

RELAY_MODES = ("auto", "open", "closed")


def default_settings(board):
    return {"loss_bound_mwh": board.LOSS_BOUND_MWH, "low_credit": board.LOW_CREDIT,
            "idle_timeout_s": 300, "relay_mode": "auto", "alarms": [],
            "wifi_ssid": "", "wifi_pass": "", "mqtt_host": "", "mqtt_port": 1883,
            "mqtt_user": "", "mqtt_pass": "", "mqtt_tls": 0}


class MeterApp:
    def __init__(self, board, hal, sink, now_ms=0, new_credit=None, new_price=None):
        """hal: .ledger_flash, .settings_flash, .log_flash (block devices),
        .pulses (.count()), .relay (.set(closed)). sink(event, now_ms) gets
        every event after it is logged."""
        self.board = board
        self.hal = hal
        self.sink = sink
        self.boot_ms = now_ms
        self.settings = Settings(hal.settings_flash, default_settings(board))
        self.log = EventLog(hal.log_flash)
        self.ledger = Ledger(
            hal.ledger_flash, imp_per_kwh=board.IMP_PER_KWH,
            price_per_kwh=board.PRICE_PER_KWH if new_price is None else new_price,
            initial_credit=board.INITIAL_CREDIT if new_credit is None else new_credit,
            loss_bound_mwh=self.settings.get("loss_bound_mwh"))
        self.auth = Auth(self.settings, now_ms)
        self.meter = Meter(self.ledger.imp)
        self.meter.update(hal.pulses.count(), now_ms)
        self.relay = RelayController(hal.relay, self.emit)
        self.emit({"event": "boot", "new": self.ledger.created,
                   "credit": self.ledger.credit, "pulses": self.ledger.pulses}, now_ms)
        # The relay state at boot comes from the ledger and the persisted
        # override, never from a default.
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
            self.log.append(k, now_ms // 1000, value, detail)
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

    # -- metering ------------------------------------------------------------

    def _decide(self, reason, now_ms):
        mode = self.settings.get("relay_mode")
        if mode == "auto":
            closed = supply_allowed(self.ledger.credit)
        else:
            closed, reason = mode == "closed", "manual"
        if self.relay.apply(closed, reason, now_ms):
            self.meter.forget_power()

    def step(self, now_ms):
        n = self.meter.update(self.hal.pulses.count(), now_ms)
        if n:
            before = self.ledger.credit
            self.ledger.consume(n)
            low = self.settings.get("low_credit")
            if before >= low > self.ledger.credit:
                self.emit({"event": "low_credit", "credit": self.ledger.credit}, now_ms)
            self._decide("credit", now_ms)
        return n

    # -- operations used by the command layer -----------------------------------

    def topup(self, ref, amount, now_ms):
        try:
            credit = self.ledger.topup(ref, amount)
        except Rejected as e:
            self.emit({"event": "topup_rejected", "ref": ref, "amount": amount,
                       "reason": str(e)}, now_ms)
            raise
        self.emit({"event": "topup", "ref": ref, "amount": amount,
                   "credit": credit}, now_ms)
        self._decide("topup", now_ms)
        return credit

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

    def refresh(self, now_ms):
        """Apply settings again after they changed wholesale (factory reset)."""
        self.ledger.set_loss_bound(self.settings.get("loss_bound_mwh"))
        self.auth = Auth(self.settings, now_ms)
        self._decide("auto", now_ms)

    def verify_ledger(self):
        """None if the ledger on flash says what RAM says, else why not."""
        self.ledger.flush()
        lg = self.ledger
        on_flash = Ledger(self.hal.ledger_flash)
        for k in ("credit", "pulses", "billed", "topups", "rem", "price", "imp"):
            if getattr(on_flash, k) != getattr(lg, k):
                return "%s differs between flash and RAM" % k
        # that boot may have opened a fresh sector: follow it
        lg.ring = on_flash.ring
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
                "pulses": lg.pulses}
