# Run by tests/test_tariffs.py::test_block_tariff_over_a_month_with_rollover

import json
from world import world, hours

block = {"version": 2, "activate": 0, "kind": "block", "standing_per_day": 0,
         "tiers": [[0, 1000], [200, 2000], [400, 3000]]}
# 100 imp/kWh so that a month of 1 kW is 72,000 pulses
sim, out = world("2026-11-01T00:00:00Z", load=1000, credit=10**8, tariffs=[block], imp=100)
lg = sim.app.ledger
sim.advance(hours(30 * 24))                # to 2026-12-01T00:00
november = lg.billed
at_end = (lg.month_pulses, lg.price)
sim.advance(hours(30 * 24 + 1))
print(json.dumps({"november": november, "at_end": at_end, "dec_pulses": lg.month_pulses,
                  "dec_price": lg.price, "total": lg.billed}))
