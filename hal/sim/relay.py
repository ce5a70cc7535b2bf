# Simulated supply relay: remembers its state and every switch with its time.


class SimRelay:
    def __init__(self, clock, closed=False):
        self.clock = clock
        self.closed = closed
        self.switches = []  # (t_ms, closed)

    def set(self, closed):
        if closed != self.closed:
            self.closed = closed
            self.switches.append((self.clock.now_ms(), closed))
