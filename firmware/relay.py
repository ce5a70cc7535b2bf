# Relay controller: the only place that switches the supply relay. It applies
# the policy's wish to the relay HAL and reports every switch as an event.


class RelayController:
    def __init__(self, hal_relay, emit):
        self.hal = hal_relay
        self.emit = emit
        self.closed = None  # unknown until the first decision after boot

    def apply(self, closed, reason, now_ms):
        if closed == self.closed:
            return False
        self.closed = closed
        self.hal.set(closed)
        self.emit({"event": "relay", "relay": "closed" if closed else "open",
                   "reason": reason}, now_ms)
        return True
