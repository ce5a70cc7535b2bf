# Run by tests/test_ledger.py::test_blank_partition_becomes_a_new_ledger_and_reboot_keeps_state

import json
from firmware.ledger import Ledger
from ledgerkit import flash, view

f = flash()
a = Ledger(f, 1600, 2000, 5000)
new = view(a)
a.consume(3)
a.consume(5)
a.topup("R-1", 700)
a.consume(1)
live = view(a)
b = Ledger(f, 1600, 9999, 1)   # new-meter settings must not override flash
print(json.dumps({"new": new, "live": live, "boot": view(b)}))
