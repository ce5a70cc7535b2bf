# Run by tests/test_ledger.py

import json
import sys
from firmware.ledger import Ledger
from ledgerkit import flash

f = flash(16, 4096)
a = Ledger(f, 1600, 2000, 10 ** 9)
for i in range(int(sys.argv[1])):
    a.consume(1)
    if i % 5000 == 0:
        a.topup("t%d" % i, 1000)
boot_reads = []
for k in range(2):
    f.bytes_read = 0
    Ledger(f)
    boot_reads.append(f.bytes_read)
print(json.dumps({"erases": f.erases, "reads": boot_reads}))
