# The journal layer the four stores share (ledger, settings, event log,
# outbox): records on a firmware.ring, sealed with a CRC-32, committed by their
# tag. A store gives its record layouts (`parse`, and `trusted` if it has
# checkpoints); this layer boots, recovers, appends or rotates, and reads.
#
# A power cut tears at most the last record; flash that goes bad can damage any
# byte. A store that passes `trusted(buf, off)` (a record with a strong check
# that carries the whole state) gets damage told apart from a cut: a record
# that does not parse but is followed by a trusted one is skipped to it, a
# header damaged after the fact is recognised by the checkpoint its sector
# holds, and records that still parse after where the journal ended mark
# damage too (a cut leaves erased space after the torn record). Each place is
# noted in `damage`; boot then returns DIRTY so writing moves to a new sector.

import struct
from binascii import crc32

from firmware.ring import DIRTY, HDR_LEN, NEW, OK, WINDOW, RingFault, SectorRing, header


def seal(body):
    """A record: its bytes (tag first), then their CRC-32."""
    return body + struct.pack("<I", crc32(body))


def intact(buf, off, n, check=4):
    """The n-byte record at off ends in the CRC-32 of the rest (check=4), or
    in its low half (check=2: formats of earlier releases, and the energy
    record). Reads in place: no copy."""
    if off + n > len(buf):
        return False
    c = crc32(memoryview(buf)[off:off + n - check])
    if check == 4:
        return struct.unpack_from("<I", buf, off + n - 4)[0] == c
    return struct.unpack_from("<H", buf, off + n - 2)[0] == c & 0xFFFF


class Journal(SectorRing):
    def __init__(self, bdev, magic, name, max_record, parse, trusted=None):
        super().__init__(bdev, magic, name, max_record)
        self.parse = parse
        self.trusted = trusted
        self.fresh = True      # the next write opens a sector (boot may clear it)

    def put(self, rec, reopen=None):
        """Write rec after the journal. When it does not fit, or boot found
        the newest sector must not be continued, the next sector is opened:
        by reopen(rec) if given (a store that opens with a checkpoint), else
        with rec itself."""
        if self.fresh or not self.append(rec):
            if reopen is None:
                self.open_next(rec)
            else:
                reopen(rec)
            self.fresh = False

    def room(self, size, most):
        """How many records of size bytes, up to most, append() can write
        before the sector is full (0 while the next write must open one)."""
        if self.fresh:
            return 0
        k = (self.bs - self.tail) // size
        return k if k < most else most

    def boot(self, apply):
        """Find the newest sector whose first record `apply(tag, value, True)`
        accepts, feed it the sector's other records, and set the tail.
        Returns NEW (blank: nothing on flash yet), OK, or DIRTY (garbage
        follows the journal, or a newer sector was left half-opened: the next
        write opens a fresh sector)."""
        self.damage = []
        try:
            status = self._boot(apply)
        except OSError as e:
            raise RingFault("%s: flash read failed: %s" % (self.name, e))
        self.fresh = status != OK
        return status

    def _boot(self, apply):
        parse, trusted = self.parse, self.trusted
        hs = self.heads()
        if trusted:
            nxt = (hs[0][1] + 1) % self.nsec if hs else 0
            # its opening checkpoint (two copies) lies in the first window
            if all(s != nxt for _, s in hs) and \
                    self.find(nxt, HDR_LEN, trusted, WINDOW - self.max_record) is not None:
                # the sector after the newest has no valid header but holds a
                # checkpoint: a cut while opening it would have left none
                hs.insert(0, ((hs[0][0] if hs else 0) + 1, nxt))
                self.damage.append((nxt, 0))
        if not hs:
            if self._unformatted():
                return NEW
            raise RingFault("partition holds no %s (foreign or damaged image); not "
                            "formatting it, as it may hold credit" % self.name)
        self.seq = hs[0][0]
        for seq, i in hs:
            first, end, ends = True, None, []
            for off, tag, v in self.records(i, parse, trusted, ends):
                if not apply(tag, v, first):
                    end = off   # a record the owner refuses ends the journal
                    break
                first = False
            if first:
                continue   # no acceptable first record: try an older sector
            if end is None:
                end = ends[0]
            self.cur, self.tail = i, end
            clean = ends[1] if ends and ends[0] == end and ends[1] is not None \
                else self.erased_from(i, end)
            if trusted and not clean and \
                    self.find(i, end + 1, lambda b, k: parse(b, k) is not None) is not None:
                self.damage.append((i, end))    # records follow where it ended
            if seq != self.seq or self.damage or not clean:
                return DIRTY
            return OK
        if hs == [(1, 0)] and self._unformatted():
            return NEW
        raise RingFault("no intact %s in %d sectors; not formatting"
                        % (self.name, len(hs)))

    def _unformatted(self):
        """True for an erased partition, or one whose very first sector open
        was cut short: sector 0 holds at most a torn prefix of the first header
        and one record, and every other byte is erased. Anything else may be
        somebody's data and is never formatted."""
        first = header(self.magic, 1)
        mv = self.window(0, 0)
        k = 0
        while k < HDR_LEN and mv[k] == first[k]:
            k += 1
        if k < HDR_LEN:
            # a torn byte keeps every 1 bit it was meant to have
            if mv[k] & first[k] != first[k]:
                return False
            start = k + 1
        else:
            start = HDR_LEN + self.max_record
        if not self.erased_from(0, start):
            return False
        for i in range(1, self.nsec):
            if not self.erased_from(i, 0):
                return False
        return True

    def after(self, wanted, n):
        """The first n records, oldest first, that a store's reader wants:
        wanted(tag, value) is True for a record after the reader's mark, False
        for one at or before it, None for a record of another kind. Reads the
        first record of each sector back from the newest to find where the
        wanted ones begin, then forward from there: what it holds does not
        grow with the journal, only with n."""
        out = []
        hs = self.heads()
        start = len(hs) - 1        # index in hs (newest first) to read from
        for i in range(len(hs)):
            if self._first(hs[i][1], wanted) is False:
                start = i
                break
        for i in range(start, -1, -1):
            for _, tag, v in self.records(hs[i][1], self.parse):
                if wanted(tag, v):
                    out.append(v)
                    if len(out) >= n:
                        return out
        return out

    def _first(self, sec, wanted):
        for _, tag, v in self.records(sec, self.parse):
            w = wanted(tag, v)
            if w is not None:
                return w
        return None
