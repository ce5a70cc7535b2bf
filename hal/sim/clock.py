# Virtual clock: milliseconds that only move when the simulator says so, so a
# simulated year takes seconds and every run is repeatable.


class VirtualClock:
    def __init__(self, start_ms=0):
        self.t = start_ms

    def now_ms(self):
        return self.t

    def set(self, t_ms):
        if t_ms < self.t:
            raise ValueError("virtual clock cannot go backwards")
        self.t = t_ms
