# Run by tests/test_tariffs.py::test_anti_chatter_defers_a_quick_reconnect

import json
from firmware.shellcore import TOPUP
from world import world

sim, out = world("2026-11-30T10:00:00Z", load=2000, credit=100, price=2000,
                 settings={"reconnect": "auto", "relay_min_interval_s": 30})
sim.advance(95000)                         # credit gone after 0.05 kWh (90 s): open
t_open = out.kinds("relay")[-1]["t"]
sim.core.at(97000, TOPUP, (1000, "Q", None))
sim.advance(160000)
print(json.dumps({"relay": [(e["t"], e["relay"], e["reason"]) for e in out.kinds("relay")],
                  "t_open": t_open}))
