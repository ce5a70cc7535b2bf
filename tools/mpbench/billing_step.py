# MicroPython: cost of one billing step (one pulse through meter, tariff,
# ledger, policy and relay) with each tariff kind. Prints JSON: microseconds
# per step, on RAM flash.
import json
import sys
import time

from firmware.calendar import parse_iso
from hal.sim.run import Output, Sim

TARIFFS = {
    "flat": {"version": 2, "activate": 0, "kind": "flat", "price": 2000, "standing_per_day": 100},
    "tou": {"version": 2, "activate": 0, "kind": "tou", "standing_per_day": 100,
            "weekday": [[0, 1200], [420, 2200], [1020, 3500], [1320, 1500]],
            "weekend": [[0, 1200], [600, 1800]]},
    "block": {"version": 2, "activate": 0, "kind": "block", "standing_per_day": 0,
              "tiers": [[0, 1500], [200, 2500], [400, 3500]]},
}


class Quiet(Output):
    def event(self, ev, t, always=False):
        pass

    def status(self, st, t, extra=None):
        pass


class Counter:
    def __init__(self):
        self.n = 0

    def count(self):
        return self.n


n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
out = {}
for kind in TARIFFS:
    sim = Sim({"tariffs": [TARIFFS[kind]], "credit": 10 ** 9, "report_ms": 0,
               "start": parse_iso("2026-11-30T06:00:00Z")}, Quiet(False, False))
    sim.boot()
    app = sim.app
    c = Counter()
    app.hal.pulses = c
    app.billing.meter.update(0, 0)
    t0 = time.ticks_us()
    for i in range(1, n + 1):
        c.n = i
        app.step(i * 2250)     # 1 kW: a pulse every 2.25 s, through 07:00 and 17:00
    out[kind] = time.ticks_diff(time.ticks_us(), t0) / n
print(json.dumps(out))
