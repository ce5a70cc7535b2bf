# The supply, a part of MeterApp: the credit state the policy gives (ok, low,
# emergency, exhausted, friendly) and what the relay does about it, the
# customer's button, emergency credit, trips and a technician's override.
# Every relay decision goes through decide() with a reason from firmware/relay.py.

from firmware import policy, tariff
from firmware.relay import AUTO, BUTTON, EMERGENCY, MANUAL, RESET, RelayController

MODES = ("auto", "open", "closed")


class Supply:
    def __init__(self, app):
        self.app = app
        self.state = None          # the credit state; None until the boot decision
        self.relay = RelayController(app.hal.relay, app.emit, app.board.RELAY_KIND)
        self.relay.restore(app.settings.get("relay_state"))
        self.configure()

    def configure(self):
        """Take the settings this part reads (at boot and after they change)."""
        s, r = self.app.settings, self.relay
        self._friendly = (policy.parse_period(s.get("friendly_nights")),
                          s.get("friendly_weekends"), policy.parse_holidays(s.get("holidays")))
        r.min_interval_ms = s.get("relay_min_interval_s") * 1000
        r.pulse_ms = s.get("relay_pulse_ms")

    def friendly_nights(self):
        return self._friendly[0]

    def policy_state(self, now_ms):
        """The credit state now (ok while PAYG is off by token)."""
        a = self.app
        s, lg = a.settings, a.ledger
        if lg.payg_off:
            return "ok"
        n, w, h = self._friendly
        friendly = policy.in_friendly(n, w, h, a.local(a.clock.now(now_ms)))
        return policy.credit_state(lg.credit, lg.emergency, s.get("low_credit"),
                                   s.get("low_clear"), self.state, friendly)

    def decide(self, reason, now_ms):
        a = self.app
        s, lg, r = a.settings, a.ledger, self.relay
        state = self.policy_state(now_ms)
        if state != self.state:
            if self.state is not None or state != "ok":
                a.emit({"event": "low_credit" if state == "low" else "credit_state",
                        "credit": lg.credit, "detail": state}, now_ms)
            self.state = state
            a.hal.indicator.show(state)
        # A friendly period keeps a closed relay closed; it does not
        # reconnect one that was already cut.
        allowed = policy.supply_allowed(state) and (
            state != "friendly" or r.state == "closed")
        before = r.state, r.closed
        # PAYG turned off by token: the supply is simply on (no button to press)
        r.decide(allowed, s.get("relay_mode"),
                 "auto" if lg.payg_off else s.get("reconnect"), reason, now_ms)
        if (r.state, r.closed) != before:
            a.billing.meter.forget_power()
            if r.state != s.get("relay_state"):
                s.save({"relay_state": r.state})

    def steady_pulses(self, now_ms):
        """How many pulses may come before the next decision could differ
        (at least 1): the credit state cannot change before the last of them,
        and no power limit is watched. A shell that knows when its pulses
        come (the simulator) may bill that many in one step; a device decides
        at every step whatever this says."""
        a = self.app
        s, lg = a.settings, a.ledger
        if s.get("max_power_w"):
            return 1
        per = 0 if lg.payg_off else \
            -(-tariff.highest(a.tariff_now(a.clock.now(now_ms))) // lg.imp)
        if not per or lg.credit <= 0:
            return 0x3FFFFFFF    # credit cannot cross a threshold it is below
        room = lg.credit - 1                        # stays above zero
        low = s.get("low_credit")
        if self.state == "ok" and lg.credit >= low and lg.credit - low < room:
            room = lg.credit - low                  # stays at or above low
        k = room // per
        return k if k > 1 else 1

    def check_power(self, now_ms):
        """Trip on a power limit held too long (settings max_power_*)."""
        s = self.app.settings
        self.relay.check_power(self.app.billing.meter.power_w(now_ms), s.get("max_power_w"),
                               s.get("max_power_window_s") * 1000, now_ms)

    def take_emergency(self, now_ms):
        """Emergency credit: once, when enabled and credit is below the
        threshold; it becomes debt repaid first from the next top-up."""
        a = self.app
        s, lg = a.settings, a.ledger
        amount = s.get("emergency_credit")
        if not amount:
            raise ValueError("emergency credit is not enabled on this meter")
        if lg.emergency > 0:
            raise ValueError("emergency credit already taken; top up first")
        if lg.credit >= s.get("emergency_threshold"):
            raise ValueError("emergency credit is only for credit below %d"
                             % s.get("emergency_threshold"))
        lg.take_emergency(amount)
        a.emit({"event": "emergency", "value": amount}, now_ms)
        self.decide(EMERGENCY, now_ms)
        return lg.credit

    def button(self, now_ms):
        """The customer's button: reconnects a READY relay; resets a trip
        after its hold-off; otherwise asks for emergency credit."""
        a, r = self.app, self.relay
        if r.state == "ready":
            r.button(now_ms)
            a.emit({"event": "button", "detail": "reconnect"}, now_ms)
        elif r.state == "tripped":
            held = now_ms - (r.tripped_at or 0) >= a.settings.get("trip_holdoff_s") * 1000
            if not held:
                a.emit({"event": "button", "detail": "trip hold-off"}, now_ms)
                return "hold-off"
            self.reset_trip(now_ms, "button")
            if r.state == "ready":
                r.button(now_ms)     # the press that reset the trip also confirms
        else:
            try:
                self.take_emergency(now_ms)
            except ValueError:
                a.emit({"event": "button", "detail": "nothing to do"}, now_ms)
                return None
        self.decide(BUTTON, now_ms)
        return r.state

    def reset_trip(self, now_ms, by="technician"):
        allowed = policy.supply_allowed(self.policy_state(now_ms))
        if not self.relay.reset_trip(now_ms, allowed, self.app.settings.get("reconnect")):
            raise ValueError("the relay is not tripped")
        self.app.emit({"event": "trip_reset", "detail": by}, now_ms)
        self.decide(RESET, now_ms)

    def set_mode(self, mode, now_ms):
        """A technician's override: open, closed, or back to auto."""
        if mode not in MODES:
            raise ValueError("relay mode must be open, closed or auto")
        self.app.settings.save({"relay_mode": mode})
        self.app.emit({"event": "config", "detail": "relay_mode=" + mode}, now_ms)
        self.decide(AUTO if mode == "auto" else MANUAL, now_ms)
