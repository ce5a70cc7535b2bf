# Run by tests/test_tariffs.py::test_standing_charge_with_zero_load

import json
from world import world, hours

flat = {"version": 2, "activate": 0, "kind": "flat", "price": 2000, "standing_per_day": 150}
sim, out = world("2026-11-01T12:00:00Z", load=0, credit=5000, tariffs=[flat])
sim.advance(hours(24 * 10))
lg = sim.app.ledger
print(json.dumps({"credit": lg.credit, "standing": lg.standing_total,
                  "events": len(out.kinds("standing_charge")), "pulses": lg.pulses}))
