# Run by tests/test_tariffs.py::test_clock_unsynced_then_resynced_both_ways

import json
import sys
from firmware.shellcore import CLOCK
from world import world, hours

img = sys.argv[1]
flat = {"version": 2, "activate": 0, "kind": "flat", "price": 2000, "standing_per_day": 100}
sim, out = world("2026-11-30T10:00:00Z", load=500, credit=10**6, flash=img, tariffs=[flat])
sim.advance(hours(2))
sim.hal.chip.close()
# power cut; back without any time source: resume from the persisted time
sim, out = world(None, load=500, flash=img)
app = sim.app
boot = (app.clock.now(0), app.clock.synced)
sim.advance(hours(1))
billed_before = app.ledger.billed
standing_before = app.ledger.standing_total
# the time source returns: 3 days later than the meter thought
t = app.clock.now(sim.clock.now_ms())
sim.core.at(sim.clock.now_ms() + 1, CLOCK, t + 3 * 86400)
sim.advance(sim.clock.now_ms() + 2)
fwd = (app.ledger.standing_total - standing_before, app.clock.synced,
       app.ledger.billed - billed_before)
# a bad source says two hours earlier: logged, not followed
t2 = app.clock.now(sim.clock.now_ms())
sim.core.at(sim.clock.now_ms() + 1, CLOCK, t2 - 7200)
sim.advance(sim.clock.now_ms() + 2)
held = app.clock.now(sim.clock.now_ms())
sim.advance(sim.clock.now_ms() + 3600 * 1000)
after_hour = app.clock.now(sim.clock.now_ms())
print(json.dumps({"boot": boot, "fwd": fwd, "t2": t2, "held": held, "after_hour": after_hour,
                  "back_events": [e["value"] for e in out.kinds("clock_back")],
                  "fwd_events": [e["value"] for e in out.kinds("clock")],
                  "standing": app.ledger.standing_total}))
