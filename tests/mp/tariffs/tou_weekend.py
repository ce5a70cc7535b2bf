# Run by tests/test_tariffs.py::test_tou_weekend_rates

import json
import sys
from world import world, hours

tou = json.loads(sys.argv[1])
sim, out = world("2026-11-28T09:00:00Z", load=2000, credit=10**7, tariffs=[tou])
prices = []
for h in range(4):
    sim.advance(hours(h + 0.5))
    prices.append(sim.app.ledger.price)
print(json.dumps({"prices": prices}))
