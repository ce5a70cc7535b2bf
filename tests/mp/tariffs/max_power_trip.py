# Run by tests/test_tariffs.py::test_max_power_trip_and_its_resets

import json
from world import world

sim, out = world("2026-11-30T10:00:00Z", load=4000, credit=10**6,
                 settings={"max_power_w": 3000, "max_power_window_s": 10,
                           "trip_holdoff_s": 60, "relay_min_interval_s": 0})
app = sim.app
sim.advance(30000)
tripped = (app.relay.state, sim.hal.relay.closed, [e["value"] for e in out.kinds("trip")])
early = app.button(40000) if sim.advance(40000) is None else None
sim.advance(100000)
late = app.button(100000)
after_button = app.relay.state
sim.advance(130000)                         # still 4 kW: trips again
again = app.relay.state
app.reset_trip(130000)
by_tech = app.relay.state
print(json.dumps({"tripped": tripped, "early": early, "late": late,
                  "after_button": after_button, "again": again, "by_tech": by_tech,
                  "trips": len(out.kinds("trip"))}))
