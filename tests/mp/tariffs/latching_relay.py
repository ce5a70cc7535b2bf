# Run by tests/test_tariffs.py::test_latching_relay_gets_coil_pulses

import json
from world import world, hours

sim, out = world(None, load=1000, credit=100, price=2000,
                 settings={"relay_pulse_ms": 80, "reconnect": "auto"})
sim.advance(hours(0.2))
print(json.dumps({"pulses": sim.hal.relay.pulses}))
