# A fixed MicroPython workload that stands for this machine's speed at the
# moment (the machine is shared and its speed varies): integer arithmetic, a
# method call, an attribute and a dict update, a bytearray write, as the
# firmware does per pulse. tools/bench.py runs it beside each speed figure and
# prints both, so figures from different runs can be compared by their ratio.
# Prints {"iter_per_s": ...}: the best of 5 runs of 100,000 iterations.

import json
import time


class Box:
    def __init__(self):
        self.n = 0
        self.d = {"a": 0}
        self.b = bytearray(64)

    def add(self, k):
        self.n += k
        self.d["a"] = self.n % 1000
        self.b[k & 63] = self.n & 0xFF
        return self.n


def loop(n):
    x = Box()
    acc = 0
    for i in range(n):
        acc = (acc + x.add(i & 7) * 3) % 100003
    return acc


best = 0
for _ in range(5):
    t = time.ticks_us()
    loop(100000)
    dt = time.ticks_diff(time.ticks_us(), t)
    best = max(best, 100000 * 1000000 // dt)
print(json.dumps({"iter_per_s": best}))
