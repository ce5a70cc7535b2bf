# The billing clock: wall time (UTC seconds) that never goes backwards.
#
# It runs from the last time it knew (persisted in the ledger) plus the time
# since boot. A sync that moves it forward is taken at once (the gap is billed
# by standing charge only: no energy was counted in it). A sync that would move
# it back is noted and the clock holds still until real time catches up, so
# nothing is billed twice.


class BillingClock:
    def __init__(self, time_s, now_ms, synced=False):
        self.base_s = time_s
        self.base_ms = now_ms
        self.floor_s = time_s
        self.synced = synced

    def now(self, now_ms):
        t = self.base_s + (now_ms - self.base_ms) // 1000
        return t if t > self.floor_s else self.floor_s

    def ms_at(self, t_s):
        """The first millisecond at which now() reads t_s or later."""
        return self.base_ms + (t_s - self.base_s) * 1000

    def sync(self, wall_s, now_ms):
        """Set the true time. Returns how far it moved the billing clock
        (negative: the true time is behind it and the clock holds)."""
        cur = self.now(now_ms)
        self.base_s, self.base_ms = wall_s, now_ms
        self.floor_s = cur if wall_s < cur else wall_s
        self.synced = True
        return wall_s - cur
