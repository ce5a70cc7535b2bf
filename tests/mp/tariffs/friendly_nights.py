# Run by tests/test_tariffs.py::test_friendly_nights_hold_the_relay_then_cut_at_the_end

import json
from world import world, hours

# credit for 1 kWh; 1 kW from 19:00 -> exhausted at 20:00, inside 18:00-08:00
sim, out = world("2026-11-30T19:00:00Z", load=1000, credit=2000, price=2000,
                 settings={"friendly_nights": "18:00-08:00"})
sim.advance(hours(2))
mid = (sim.app.credit_state, sim.hal.relay.closed, sim.app.ledger.credit)
sim.advance(hours(13.5))                    # to 08:30
opened = [e for e in out.kinds("relay") if e["relay"] == "open"]
print(json.dumps({"mid": mid, "opened": [e["t"] for e in opened],
                  "credit": sim.app.ledger.credit, "state": sim.app.credit_state}))
