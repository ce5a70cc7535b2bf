# Run by tests/test_tariffs.py::test_pending_tariff_activates_on_time_across_a_reboot

import json
import sys
from world import world, hours, parse_iso

img = sys.argv[1]
v2 = {"version": 2, "activate": parse_iso("2026-11-30T12:00:00Z"), "kind": "flat",
      "price": 3000, "standing_per_day": 0}
sim, out = world("2026-11-30T10:00:00Z", load=1000, credit=10**6, flash=img,
                 price=1000, tariffs=[v2])
sim.advance(hours(1))
p1 = sim.app.ledger.price
pending = [t["version"] for t in sim.app.tariffs()]
sim.hal.chip.close()
# power cut and back, one hour later by the time source
sim, out = world("2026-11-30T11:00:00Z", load=1000, flash=img)
lg = sim.app.ledger
times = []
orig = lg.set_price
def set_price(p):
    times.append((sim.app.clock.now(sim.clock.now_ms()), p))
    orig(p)
lg.set_price = set_price
sim.advance(hours(2))
print(json.dumps({"p1": p1, "pending": pending, "times": times, "price": lg.price}))
