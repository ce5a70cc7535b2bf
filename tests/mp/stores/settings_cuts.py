# Run by tests/test_stores.py

import json
from hal.sim.flash import SimFlash, PowerCut
from hal.sim.rng import Rng
from firmware.settings import Settings
rng = Rng(7)
f = SimFlash(None, 4096, 2, seed=3, cut_erases=True)
bad, cuts, saves = [], 0, 0
committed = {}      # what the last save that returned wrote
attempt = None      # what the save that was cut tried to write
for round in range(300):
    f._ops = 0
    f.cut_after_writes = 1 + rng.below(12)
    try:
        s = Settings(f, {"a": 0})
        got = s.items()
        want = dict({"a": 0}, **committed)
        if got != want and (attempt is None or got != dict({"a": 0}, **attempt)):
            bad.append([round, got, want, attempt])
        if attempt is not None and got != want:
            committed = attempt
        attempt = None
        while True:
            new = dict(committed)
            new["a"] = rng.below(1000)
            new["wifi_ssid"] = "x" * rng.below(200)   # varied sizes force rotations
            attempt = new
            s.save(new, replace=True)
            committed, attempt = new, None
            saves += 1
    except PowerCut:
        cuts += 1
print(json.dumps({"bad": bad[:5], "cuts": cuts, "saves": saves, "erases": f.erases}))
