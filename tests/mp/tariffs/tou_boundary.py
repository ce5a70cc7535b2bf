# Run by tests/test_tariffs.py::test_tou_switches_at_the_boundary_to_the_pulse

import json
import sys
from world import world, hours

tou = json.loads(sys.argv[1])
# Monday 06:50 UTC, 1000 W: a pulse every 2.25 s, each in its own step (the
# batched steps bill the same: tests/test_batch.py)
sim, out = world("2026-11-30T06:50:00Z", load=1000, credit=10**7, tariffs=[tou],
                 per_pulse=True)
lg = sim.app.ledger
seen = []                                   # (pulse time, price it was billed at)
orig = lg.consume
def consume(n):
    seen.append((sim.app.clock.now(sim.clock.now_ms()) * 1000 + sim.clock.now_ms() % 1000,
                 lg.price))
    return orig(n)
lg.consume = consume
sim.advance(hours(0.5))
print(json.dumps({"seen": seen, "billed": lg.billed, "pulses": lg.pulses, "rem": lg.rem}))
