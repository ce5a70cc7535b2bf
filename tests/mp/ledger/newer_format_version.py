# Run by tests/test_ledger.py::test_newer_format_version_is_a_fault

import json
from firmware import records as R
from firmware.ledger import Ledger
from ledgerkit import flash, fault

import struct
from binascii import crc32
f = flash(4, 4096)
Ledger(f, 1600, 2000, 100)
h = R.MAGIC + struct.pack("<HHI", 7, 0, 99)
f.ioctl(6, 1)
f.writeblocks(1, h + struct.pack("<I", crc32(h)), 0)
print(json.dumps({"msg": fault(f)}))
