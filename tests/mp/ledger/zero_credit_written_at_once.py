# Run by tests/test_ledger.py::test_crossing_zero_credit_is_written_at_once

import json
from firmware.ledger import Ledger
from ledgerkit import flash

f = flash()
a = Ledger(f, 1600, 1600, 10, loss_bound_mwh=10 ** 6)   # 1 minor unit per pulse
for i in range(10):
    a.consume(1)
b = Ledger(f)
print(json.dumps({"credit": b.credit, "pending": a.pending}))
