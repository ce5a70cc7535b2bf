# Relay controller: the only place that switches the supply relay.
#
# Logical states: closed, open (no credit), ready (credit is back; waiting for
# the customer's button, so the supply never comes back by surprise), tripped
# (opened for drawing more than the power limit). The physical relay is closed
# only in `closed`. A close comes at least min_interval_ms after the last switch
# (anti-chatter): one asked for sooner waits, and the shell is told when to come
# back. An open never waits.
# A latching relay gets a coil pulse, a monostable one a level.

# Why a decision was made; a switch is logged as relay:<reason>. Only BOOT
# (re-asserts a position, starts no anti-chatter interval) and MANUAL (a
# technician's close acts at once) change how the relay switches.
BOOT = "boot"
MANUAL = "manual"
AUTO = "auto"            # back to automatic, or settings applied again
CREDIT = "credit"        # the meter's step: pulses billed, time passed
CLOCK = "clock"
TOPUP = "topup"
TOKEN = "token"
EMERGENCY = "emergency"
BUTTON = "button"
RESET = "reset"          # a trip reset
OVERLOAD = "overload"


class RelayController:
    def __init__(self, hal, emit, kind="monostable", pulse_ms=100, min_interval_ms=10000):
        self.hal = hal
        self.emit = emit
        self.kind = kind
        self.pulse_ms = pulse_ms
        self.min_interval_ms = min_interval_ms
        self.state = None          # logical state; None until the boot decision
        self.closed = None         # physical state as last driven
        self.last_switch = None    # time of the last physical switch
        self.deferred = None       # (closed, reason) waiting for anti-chatter
        self.over_since = None     # power above the limit since
        self.tripped_at = None

    # -- physical ------------------------------------------------------------

    def _drive(self, closed, reason, now):
        if closed == self.closed:
            self.deferred = None
            return
        if self.deferred is not None and self.deferred[0] == closed:
            reason = self.deferred[1]   # the switch keeps the reason it was asked for
        # Anti-chatter delays a reconnect, never a disconnect: the supply goes
        # off at once (credit gone, a trip, a technician); a technician's
        # close acts at once too.
        if (closed and reason != MANUAL and self.last_switch is not None
                and now - self.last_switch < self.min_interval_ms):
            self.deferred = (closed, reason)
            return
        self.deferred = None
        self.closed = closed
        # The boot decision only re-asserts a position: it does not start the
        # anti-chatter interval.
        self.last_switch = None if reason == BOOT else now
        if self.kind == "latching":
            self.hal.pulse(closed, self.pulse_ms)
        else:
            self.hal.set(closed)
        self.emit({"event": "relay", "relay": "closed" if closed else "open",
                   "reason": reason}, now)

    def _set(self, state, reason, now):
        if state != self.state:
            self.state = state
            if state in ("ready", "tripped"):
                self.emit({"event": "relay_state", "detail": state, "reason": reason}, now)
        self._drive(state == "closed", reason, now)

    def next_wake(self):
        """When a deferred switch may happen, or None."""
        if self.deferred is None or self.last_switch is None:
            return None
        return self.last_switch + self.min_interval_ms

    # -- decisions -------------------------------------------------------------

    def decide(self, allowed, manual, reconnect, reason, now):
        """allowed: the policy lets the supply be on; manual: 'auto', 'open'
        or 'closed' (a technician's override); reconnect: 'auto' or 'button'."""
        if manual != "auto":
            self.tripped_at = None
            self._set(manual, BOOT if reason == BOOT else MANUAL, now)
            return
        s = self.state
        if s == "tripped":
            self._drive(False, reason, now)
            return
        if not allowed:
            self._set("open", reason, now)
        elif s in (None, "closed"):
            self._set("closed", reason, now)
        elif s in ("open", "ready"):
            self._set("closed" if reconnect == "auto" else "ready", reason, now)
        if self.deferred is not None and self.next_wake() <= now:
            self._drive(self.deferred[0], self.deferred[1], now)

    def restore(self, saved):
        """The logical state saved before a reboot: `ready` and `tripped`
        survive it, so a power cut never reconnects by surprise."""
        if saved in ("open", "ready", "tripped"):
            self.state = "ready" if saved == "open" else saved

    def button(self, now):
        """The customer's button. Returns what it did: 'closed' (from ready),
        'reset' (a trip after its hold-off), or None."""
        if self.state == "ready":
            self._set("closed", BUTTON, now)
            return "closed"
        return None

    def reset_trip(self, now, allowed, reconnect):
        if self.state != "tripped":
            return False
        self.tripped_at = None
        self.over_since = None
        self.state = "open"
        self.decide(allowed, "auto", reconnect, RESET, now)
        return True

    def check_power(self, power_w, limit_w, window_ms, now):
        """Trip when the power stays above limit_w for window_ms."""
        if not limit_w or self.state != "closed" or power_w <= limit_w:
            self.over_since = None
            return False
        if self.over_since is None:
            self.over_since = now
        if now - self.over_since < window_ms:
            return False
        self.tripped_at = now
        self.over_since = None
        self.emit({"event": "trip", "value": power_w}, now)
        self._set("tripped", OVERLOAD, now)
        return True
