# Run by tests/test_ledger.py::test_every_checkpoint_damaged_is_a_fault_not_a_reformat

import json
from firmware import records as R
from firmware.ledger import Ledger
from firmware.ring import HDR_LEN
from ledgerkit import flash, fault

f = flash(4, 4096)
a = Ledger(f, 1600, 2000, 100)
for i in range(3000):
    a.consume(1)          # several sectors written
# damage every checkpoint: clear the tag of both copies of each sector's STATE
n = len(R.state(a._values(), a.refs))
for s in range(4):
    f.writeblocks(s, b"\x00", HDR_LEN)
    f.writeblocks(s, b"\x00", HDR_LEN + n)
print(json.dumps({"msg": fault(f)}))
