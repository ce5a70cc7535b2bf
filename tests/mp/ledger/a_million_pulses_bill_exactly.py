# Run by tests/test_ledger.py::test_a_million_pulses_bill_exactly

import json
import sys
from firmware.ledger import Ledger
from ledgerkit import flash

price, imp = int(sys.argv[1]), int(sys.argv[2])
f = flash()
a = Ledger(f, imp, price, 10 ** 12, loss_bound_mwh=10 ** 9)  # batch writes
total, step = 0, 1
while total < 1000000:
    n = min(step, 1000000 - total)
    a.consume(n)
    total += n
    step = step % 37 + 1
a.flush()
b = Ledger(f)
print(json.dumps({"live": a.billed, "rem": a.rem, "boot": b.billed, "credit": b.credit,
                  "pulses": b.pulses}))
