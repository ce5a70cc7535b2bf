# Run by tests/test_ledger.py::test_duplicate_topup_is_rejected_before_and_after_reboot

import json
from firmware.ledger import Ledger, Rejected
from ledgerkit import flash

f = flash()
a = Ledger(f, 1600, 2000, 0)
a.topup("TX-1", 500)
errs = []
for amount in (500, 1):
    try:
        a.topup("TX-1", amount)
    except Rejected as e:
        errs.append(str(e))
b = Ledger(f)
try:
    b.topup("TX-1", 500)
except Rejected as e:
    errs.append(str(e))
bad = []
for ref, amt in (("", 5), ("x" * 65, 5), ("ok", 0), ("ok", -3), ("ok", 2**32), ("ok", 1.5)):
    try:
        b.topup(ref, amt)
    except Rejected as e:
        bad.append(str(e))
print(json.dumps({"errs": errs, "bad": bad, "credit": b.credit, "count": b.topup_count}))
