# Run by tests/test_stores.py

import json
from hal.sim.flash import SimFlash
from firmware.settings import Settings
f = SimFlash(None, 4096, 2)
s = Settings(f, {"a": 1, "b": "x"})
out = {"new": s.items()}
s.save({"a": 5, "c": [1, 2]})
s.save({"b": "y"})
out["boot"] = Settings(f, {"a": 1, "b": "x"}).items()
s.save({"c": None})
s.save({"b": "z"}, replace=True)
out["reset"] = Settings(f, {"a": 1, "b": "x"}).items()
try:
    s.save({"big": "x" * 2000})
    out["big"] = "saved"
except ValueError as e:
    out["big"] = str(e)
out["after_big"] = Settings(f, {"a": 1, "b": "x"}).items()
print(json.dumps(out))
