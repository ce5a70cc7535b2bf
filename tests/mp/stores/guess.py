# Run by tests/test_stores.py

import json
from hal.sim.flash import SimFlash, PowerCut
from firmware.settings import Settings
from firmware.auth import Auth
f = SimFlash(None, 4096, 2)
s = Settings(f, {})
Auth(s, 0).set_pin("2468")
out = {}
for pin in ("1111", "2468"):
    f.cut_after_writes = f._ops + 1         # cut the next write, whatever it is
    try:
        r = Auth(Settings(f, {}), 0).check(pin, 0)
        out[pin] = "answered: %s" % r
    except PowerCut:
        out[pin] = "cut"
    f.cut_after_writes = 0
print(json.dumps(out))
