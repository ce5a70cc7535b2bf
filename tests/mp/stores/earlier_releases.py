# Run by tests/test_stores.py::test_stores_read_what_earlier_releases_wrote

import json
import struct
from binascii import crc32
from hal.sim.flash import SimFlash
from firmware import ring, outbox, eventlog, settings
def sector(magic, *recs):
    f = SimFlash(None, 4096, 2)
    f.ioctl(6, 0)
    f.writeblocks(0, ring.header(magic, 1), 0)
    f.writeblocks(0, b"".join(recs), ring.HDR_LEN)
    return f
def c16(b):
    return b + struct.pack("<H", crc32(b) & 0xFFFF)
ob = outbox.Outbox(sector(outbox.MAGIC, c16(struct.pack("<BII", 0x41, 41, 7)),
                          c16(struct.pack(outbox.TELE_FMT, 0x4D, 9, 100, 5, 6, 7, 1, 0))))
w = eventlog.encode(3, 12, 500, 70, "old")
ev = eventlog.EventLog(sector(eventlog.MAGIC, bytes((0x57,)) + w[1:-4]
                              + struct.pack("<I", crc32(bytes((0x57,)) + w[1:-4]))))
blob = json.dumps({"price": 1234}).encode()
b = struct.pack("<BH", 0x43, len(blob)) + blob
st = settings.Settings(sector(settings.MAGIC, b + struct.pack("<I", crc32(b))), {"price": 0})
print(json.dumps([ob.acked_event, ob.acked_tele, ob.tseq, ev.seq, ev.last(1)[0][4],
                  st.get("price")]))
