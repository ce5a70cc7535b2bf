# Run by tests/test_ledger.py

import json
import sys
from firmware.ledger import Ledger, LedgerFault
from ledgerkit import flash, view

base = flash(4, 4096)
a = Ledger(base, 1600, 2000, 100000)
for i in range(1100):
    a.consume(1)          # past the first sector
a.topup("T-1", 700)
for i in range(100):
    a.consume(1)
a.set_price(2100)         # a checkpoint in place
for i in range(50):
    a.consume(1)
a.topup("T-2", 900)
for i in range(20):
    a.consume(1)
a.flush()
want = view(a)
sec, tail = a.journal.cur, a.journal.tail
img = bytes(base.data)
out = {"lost_topup": [], "silent": [], "detected": 0, "unchanged": 0, "torn_like": 0,
       "n": 0, "fault": []}
step = int(sys.argv[1]) if len(sys.argv) > 1 else 1
for off in range(0, tail, step):
    f = flash(4, 4096)
    f.data[:] = img
    f.data[sec * 4096 + off] ^= 0x5A
    out["n"] += 1
    try:
        lg = Ledger(f)
    except LedgerFault as e:
        out["fault"].append([off, str(e)])
        continue
    got = view(lg)
    if got["topups"] != want["topups"] or got["count"] != want["count"]:
        out["lost_topup"].append(off)
    if got == dict(want, created=got["created"]):
        out["unchanged"] += 1
    elif lg.damage:
        out["detected"] += 1
    elif want["pulses"] - got["pulses"] <= 1 and off >= tail - 8:
        out["torn_like"] += 1     # the last record: a cut could have torn it
    else:
        out["silent"].append([off, got, want])
print(json.dumps(out))
