# Run by tests/test_ledger.py::test_a_vend_sequence_number_lands_once_however_late_its_retry

import json
from firmware.ledger import Ledger, Rejected
from ledgerkit import flash

from hal.sim.rng import Rng
rng = Rng(11)
f = flash(4, 4096)
a = Ledger(f, 1600, 2000, 0)
used, out = set(), {"applied": 0, "retries_refused": 0, "stale": 0, "double": 0,
                    "missed": 0, "reboots": 0}
top = 0
for i in range(3000):
    k = rng.below(10)
    if k < 5:
        top += 1 + (rng.below(40) if rng.below(8) == 0 else 0)   # new, sometimes a jump
        v = top
    else:
        v = max(1, top - rng.below(80))                        # a retry or a late vend
    try:
        a.topup("R%d-%d" % (v, i), 1, vseq=v)
        if v in used:
            out["double"] += 1
        used.add(v)
        out["applied"] += 1
    except Rejected as e:
        if "stale" in str(e):
            out["stale"] += 1
        elif v in used:
            out["retries_refused"] += 1
        else:
            out["missed"] += 1
    if rng.below(50) == 0:
        a = Ledger(f)
        out["reboots"] += 1
out["credit_is_applied"] = a.credit == out["applied"]
print(json.dumps(out))
