# Run by tests/test_ledger.py::test_reads_a_ledger_written_in_the_first_format

import json
from firmware import records as R
from firmware.ledger import Ledger
from ledgerkit import flash, view

import struct
from binascii import crc32
from firmware import ring
f = flash(4, 4096)
f.ioctl(6, 0)
f.writeblocks(0, ring.header(R.MAGIC, 1), 0)
payload = struct.pack("<qQqqIIIIB", 4000, 800, 1000, 0, 0, 2000, 1600, 0, 0)
b = struct.pack("<BH", 0x53, len(payload)) + payload
s1 = b + struct.pack("<I", crc32(b))
t = struct.pack("<BI", 0x54, 500) + b"12345678"
t += struct.pack("<H", crc32(t) & 0xFFFF)
e = bytes((0x45, 2))
e += struct.pack("<H", crc32(e) & 0xFFFF)
f.writeblocks(0, s1 + t + e, 16)
lg = Ledger(f)
print(json.dumps(view(lg)))
