# Simulated supply relay: remembers its state and every switch with its time.
# A monostable relay is driven by a level (set), a latching one by a coil
# pulse (pulse); both are recorded.


class SimRelay:
    def __init__(self, clock, closed=False):
        self.clock = clock
        self.closed = closed
        self.switches = []  # (t_ms, closed)
        self.pulses = []    # (t_ms, closed, ms) coil pulses of a latching relay

    def set(self, closed):
        if closed != self.closed:
            self.closed = closed
            self.switches.append((self.clock.now_ms(), closed))

    def pulse(self, closed, ms):
        self.pulses.append((self.clock.now_ms(), closed, ms))
        self.set(closed)


class SimIndicator:
    """The buzzer/LED: shows the credit state (low, emergency, ...)."""

    def __init__(self, clock):
        self.clock = clock
        self.state = None
        self.shown = []     # (t_ms, state)

    def show(self, state):
        self.state = state
        self.shown.append((self.clock.now_ms(), state))
        if len(self.shown) > 64:
            self.shown.pop(0)
