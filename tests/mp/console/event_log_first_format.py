# Run by tests/test_console.py::test_an_event_log_of_the_first_format_is_read

import json
import struct
from binascii import crc32
from hal.sim.flash import SimFlash
from firmware import ring
from firmware.eventlog import EventLog, MAGIC
f = SimFlash(None, 4096, 4)
f.ioctl(6, 0)
f.writeblocks(0, ring.header(MAGIC, 1), 0)
b = struct.pack("<BBIIi", 0x56, 2, 1, 100, 500) + b"OLD-1" + bytes(11)
f.writeblocks(0, b + struct.pack("<H", crc32(b) & 0xFFFF), ring.HDR_LEN)
log = EventLog(f)
log.append("topup", 200, 4294967295, "NEW-1")
print(json.dumps([list(e) for e in EventLog(f).last(5)]))
