# Run by tests/test_tariffs.py::test_low_credit_hysteresis_and_indicator

import json
from world import world, hours

sim, out = world("2026-11-30T10:00:00Z", load=2000, credit=1100, price=2000,
                 settings={"low_credit": 1000, "low_clear": 1500})
app = sim.app
sim.advance(hours(0.05))                   # 200 Wh = 400 minor: credit 700 -> low
low = (app.credit_state, sim.hal.indicator.state)
app.topup("A", 500, sim.clock.now_ms())     # 1200: still below low_clear
mid = app.credit_state
app.topup("B", 500, sim.clock.now_ms())     # 1700: back to ok
print(json.dumps({"low": low, "mid": mid, "end": app.credit_state,
                  "shown": [s for _, s in sim.hal.indicator.shown],
                  "events": [e["detail"] for e in out.kinds("low_credit")]}))
