# The persisted outbox of the MQTT sync, on its own flash partition (a
# firmware.ring). Events need no copy here: the event log is their outbox,
# and this partition only remembers up to which event sequence number the
# broker has acknowledged. Telemetry snapshots are queued here while offline;
# the ring drops the oldest telemetry when full, never an event.
#
# TELEMETRY 'M': u8 tag, u32 tseq, u32 t, q credit, Q pulses, i32 power_w,
#                u8 relay, u8 state, u16 crc                        (32 bytes)
# CURSOR 'A':    u8 tag, u32 event_seq, u32 tseq, u16 crc           (11 bytes)

import struct
from binascii import crc32

from firmware import ring
from firmware.policy import STATES

MAGIC = b"PPOB"
TAG_TELE = 0x4D
TAG_CURSOR = 0x41
TELE_FMT = "<BIIqQiBB"
TELE_LEN = struct.calcsize(TELE_FMT) + 2
CURSOR_LEN = 11


def _crc(b):
    return b + struct.pack("<H", crc32(b) & 0xFFFF)


def parse(buf, off):
    if off >= len(buf):
        return None
    tag = buf[off]
    n = TELE_LEN if tag == TAG_TELE else CURSOR_LEN if tag == TAG_CURSOR else 0
    if not n or off + n > len(buf):
        return None
    if struct.unpack_from("<H", buf, off + n - 2)[0] != crc32(buf[off:off + n - 2]) & 0xFFFF:
        return None
    if tag == TAG_CURSOR:
        return tag, struct.unpack_from("<II", buf, off + 1), off + n
    return tag, struct.unpack_from(TELE_FMT, buf, off)[1:], off + n


class Outbox:
    def __init__(self, bdev):
        self.ring = ring.SectorRing(bdev, MAGIC, "outbox", TELE_LEN)
        self.acked_event = 0
        self.acked_tele = 0
        self.tseq = 0
        status = self.ring.boot(parse, self._see)
        self._fresh_sector = status != ring.OK
        if status != ring.NEW:
            self._scan()

    def _see(self, tag, v, first):
        return True

    def _scan(self):
        """Read every sector once at boot: the newest cursor and telemetry seq."""
        try:
            for _, sec in self.ring.heads():
                for _, tag, v in self.ring.records(sec, parse):
                    if tag == TAG_CURSOR:
                        if v[0] >= self.acked_event and v[1] >= self.acked_tele:
                            self.acked_event, self.acked_tele = v
                    elif v[0] > self.tseq:
                        self.tseq = v[0]
        finally:
            self.ring.release()

    def _put(self, rec):
        if self._fresh_sector or not self.ring.append(rec):
            # A new sector: first carry the cursor over so that it survives
            # when the old sector is recycled.
            self.ring.open_next(_crc(struct.pack("<BII", TAG_CURSOR, self.acked_event,
                                                 self.acked_tele)))
            self._fresh_sector = False
            if rec[0] != TAG_CURSOR:
                self.ring.append(rec)

    def add_telemetry(self, t, credit, pulses, power_w, relay_closed, state):
        self.tseq += 1
        self._put(_crc(struct.pack(TELE_FMT, TAG_TELE, self.tseq, t, credit, pulses, power_w,
                                   1 if relay_closed else 0,
                                   STATES.index(state) if state in STATES else 0)))
        return self.tseq

    def save_cursor(self, event_seq, tseq):
        if (event_seq, tseq) == (self.acked_event, self.acked_tele):
            return
        self.acked_event, self.acked_tele = event_seq, tseq
        self._put(_crc(struct.pack("<BII", TAG_CURSOR, event_seq, tseq)))

    def telemetry_after(self, tseq, n):
        """Up to n queued telemetry snapshots after tseq, oldest first:
        (tseq, t, credit, pulses, power_w, relay, state)."""
        return self.ring.after(parse, lambda tag, v: v[0] > tseq if tag == TAG_TELE else None,
                               n)
