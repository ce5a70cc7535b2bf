# Run by tests/test_ledger.py::test_foreign_image_is_a_fault_and_is_never_formatted

import json
from ledgerkit import flash, fault

f = flash(4, 4096)
f.writeblocks(2, b"FAT16 image, somebody's data", 0)
before = bytes(f.data)
print(json.dumps({"msg": fault(f), "untouched": bytes(f.data) == before,
                  "writes": f.writes}))
