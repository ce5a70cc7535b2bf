# The persisted outbox of the MQTT sync, on its own flash partition (a
# firmware.journal). Events need no copy here: the event log is their outbox,
# and this partition only remembers up to which event sequence number the
# broker has acknowledged. Telemetry snapshots are queued here while offline;
# the ring drops the oldest telemetry when full, never an event.
#
# TELEMETRY 0xF9: u8 tag, u32 tseq, u32 t, q credit, Q pulses, i32 power_w,
#                 u8 relay, u8 state, u32 crc32                     (34 bytes)
# CURSOR 0xFA:    u8 tag, u32 event_seq, u32 tseq, u32 crc32        (13 bytes)
# The ring programs the tag last, as the record's commit mark (firmware/ring.py).
# Read, no longer written (earlier releases, tag first): the same layouts with
# a u16 check (low half of CRC-32) and tags 'M' 0x4D, 'A' 0x41.

import struct

from firmware.journal import Journal, intact, seal
from firmware.policy import STATES
from firmware.ring import NEW

MAGIC = b"PPOB"
TAG_TELE = 0xF9
TAG_CURSOR = 0xFA
TELE_FMT = "<BIIqQiBB"
TELE_LEN = struct.calcsize(TELE_FMT) + 4
CURSOR_LEN = 13
# tag -> (length, check bytes, the kind it parses as)
KINDS = {TAG_TELE: (TELE_LEN, 4, TAG_TELE), TAG_CURSOR: (CURSOR_LEN, 4, TAG_CURSOR),
         0x4D: (TELE_LEN - 2, 2, TAG_TELE), 0x41: (CURSOR_LEN - 2, 2, TAG_CURSOR)}


def cursor(event_seq, tseq):
    return seal(struct.pack("<BII", TAG_CURSOR, event_seq, tseq))


def telemetry(tseq, t, credit, pulses, power_w, relay_closed, state):
    return seal(struct.pack(TELE_FMT, TAG_TELE, tseq, t, credit, pulses, power_w,
                            1 if relay_closed else 0,
                            STATES.index(state) if state in STATES else 0))


def parse(buf, off):
    if off >= len(buf):
        return None
    n, k, tag = KINDS.get(buf[off], (0, 0, 0))
    if not n or not intact(buf, off, n, k):
        return None
    if tag == TAG_CURSOR:
        return tag, struct.unpack_from("<II", buf, off + 1), off + n
    return tag, struct.unpack_from(TELE_FMT, buf, off)[1:], off + n


class Outbox:
    def __init__(self, bdev):
        self.journal = Journal(bdev, MAGIC, "outbox", TELE_LEN, parse)
        self.acked_event = 0
        self.acked_tele = 0
        self.tseq = 0
        # boot reads the newest sector's records through _see; older sectors
        # only when that one holds no telemetry
        if self.journal.boot(self._see) != NEW and not self.tseq:
            self._scan()
        if self.tseq < self.acked_tele:
            self.tseq = self.acked_tele     # never number a snapshot the broker took

    def _see(self, tag, v, first=False):
        """Every sector opens with the cursor carried over and seqs grow in
        writing order: the newest sector holds the newest of both."""
        if tag == TAG_CURSOR:
            if v[0] >= self.acked_event and v[1] >= self.acked_tele:
                self.acked_event, self.acked_tele = v
        elif v[0] > self.tseq:
            self.tseq = v[0]
        return True

    def _scan(self):
        """Back from the newest sector until one holds telemetry: one or two
        sectors in practice, whatever the meter's age. The sector boot took
        was read by boot."""
        j = self.journal
        for _, sec in j.heads():
            if sec == j.cur:
                continue
            for _, tag, v in j.records(sec, parse):
                self._see(tag, v)
            if self.tseq:
                break

    def _reopen(self, rec):
        # A new sector opens with the cursor, so that it survives when the old
        # sector is recycled.
        self.journal.open_next(cursor(self.acked_event, self.acked_tele))
        if rec[0] != TAG_CURSOR:
            self.journal.append(rec)

    def add_telemetry(self, t, credit, pulses, power_w, relay_closed, state):
        self.tseq += 1
        self.journal.put(telemetry(self.tseq, t, credit, pulses, power_w, relay_closed, state),
                         self._reopen)
        return self.tseq

    def save_cursor(self, event_seq, tseq):
        if (event_seq, tseq) == (self.acked_event, self.acked_tele):
            return
        self.acked_event, self.acked_tele = event_seq, tseq
        self.journal.put(cursor(event_seq, tseq), self._reopen)

    def telemetry_after(self, tseq, n):
        """Up to n queued telemetry snapshots after tseq, oldest first:
        (tseq, t, credit, pulses, power_w, relay, state)."""
        return self.journal.after(lambda tag, v: v[0] > tseq if tag == TAG_TELE else None, n)
