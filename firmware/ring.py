# A ring of flash sectors holding a journal of records: the storage pattern
# shared by the ledger, the settings store and the event log.
#
# Each sector starts with a 16-byte header (magic, version, seq, crc32) and
# then records, appended only into erased space. When a record does not fit,
# the next sector in the ring is erased and opened with a first record the
# owner chooses (a checkpoint, or simply the record). So:
#   - boot reads every header, then the newest sector: cost does not grow;
#   - sectors are erased in turn: wear is even;
#   - the sector being written is never the one erased, so a power cut at any
#     byte of any write or erase leaves the previous sector readable.
# Records are the owner's: `parse(buf, off)` returns (tag, value, next_off) or
# None where the journal ends (erased space, a torn or damaged record).
#
# A record's first byte is its tag, and the tag is its commit mark: a record is
# programmed in two writes, everything after the tag first, then the tag. A cut
# during the first write leaves the tag erased (0xFF, the journal's end), so no
# check, however weak, is asked to tell a torn body from a good one. A cut
# during the second leaves a half-programmed tag: it keeps some of the 1 bits
# it was meant to lose. Tags written today have exactly six 1 bits and no tag
# an owner accepts has seven, so a half-programmed tag is never a tag at all.
# (Writing a byte twice needs plain NOR: ESP32 flash encryption, which writes
# 16-byte blocks, rules this journal out as a whole, not just the mark.)
#
# A power cut tears at most the last record; flash that goes bad can damage any
# byte. An owner that passes `trusted(buf, off)` (a record with a strong check
# that carries the whole state) gets damage told apart from a cut: a record
# that does not parse but is followed by a trusted one is skipped to it, a
# header damaged after the fact is recognised by the checkpoint its sector
# holds, and records that still parse after where the journal ended mark
# damage too (a cut leaves erased space after the torn record). Each place is
# noted in `damage`; boot then returns DIRTY so writing moves to a new sector.

import struct
from binascii import crc32

HDR_LEN = 16
VERSION = 1
ERASED = 0xFF
WINDOW = 1024        # boot reads a sector through a window this size

NEW, OK, DIRTY = 0, 1, 2


class RingFault(Exception):
    """The partition holds no usable journal; it is left untouched."""


def header(magic, seq):
    b = magic + struct.pack("<HHI", VERSION, 0, seq)
    return b + struct.pack("<I", crc32(b))


def parse_header(magic, b):
    """seq of a valid header, None if none; raises RingFault for a header of a
    format version this firmware does not know."""
    if bytes(b[:4]) != magic:
        return None
    if struct.unpack("<I", bytes(b[12:16]))[0] != crc32(bytes(b[:12])):
        return None
    ver, _, seq = struct.unpack("<HHI", bytes(b[4:12]))
    if ver != VERSION:
        raise RingFault("format version %d (firmware reads %d)" % (ver, VERSION))
    return seq


class SectorRing:
    def __init__(self, bdev, magic, name, max_record):
        self.bdev = bdev
        self.magic = magic
        self.name = name
        self.max_record = max_record
        try:
            self.nsec = bdev.ioctl(4, 0)
            self.bs = bdev.ioctl(5, 0) or 512
        except OSError as e:
            raise RingFault("%s: flash geometry unreadable: %s" % (name, e))
        if self.nsec < 2 or self.bs < 512 or self.bs < HDR_LEN + max_record:
            raise RingFault("%s partition too small: %d x %d bytes"
                            % (name, self.nsec, self.bs))
        self.seq = 0
        self.cur = self.nsec - 1   # so that a new ring opens sector 0 first
        self.tail = self.bs
        self._win = None
        self.damage = []           # (sector, offset) of damaged records found at boot
        self.end = 0               # where the last sector read by records() ended
        self.end_erased = None     # and whether all after it is erased (None: not looked)

    # -- reading -------------------------------------------------------------

    def window(self, sec, off):
        """Sector bytes from `off`, at most WINDOW of them. Boot never asks for
        a sector-sized buffer: on the device a 4 KiB block may not be free in
        a fragmented heap."""
        if self._win is None:
            self._win = bytearray(WINDOW)
        n = self.bs - off
        mv = memoryview(self._win)[:n if n < WINDOW else WINDOW]
        self.bdev.readblocks(sec, mv, off)
        return mv

    def erased_from(self, sec, off):
        while off < self.bs:
            mv = self.window(sec, off)
            for b in mv:
                if b != ERASED:
                    return False
            off += len(mv)
        return True

    def records(self, sec, parse, trusted=None):
        """Yield (offset, tag, value) for the records of one sector, in order.
        After the loop, self.end is where the journal of that sector ends.
        With `trusted`, a damaged record followed by a trusted one is skipped."""
        off, base, mv = HDR_LEN, 0, None
        while True:
            if mv is None or (off + self.max_record > base + len(mv)
                              and base + len(mv) < self.bs):
                base = off
                mv = self.window(sec, off)
            r = parse(mv, off - base)
            if r is None:
                self.end, self.end_erased = off, None
                if trusted:
                    # erased space is the journal's end; anything else is a
                    # torn record (a cut) or damage, told apart by what follows
                    self.end_erased = self.erased_from(sec, off)
                    nxt = None if self.end_erased else self.find(sec, off + 1, trusted)
                    if nxt is not None:
                        self.damage.append((sec, off))
                        off, mv = nxt, None
                        continue
                return
            tag, v, nxt = r
            yield off, tag, v
            off = base + nxt

    def find(self, sec, off, good, end=None):
        """The first offset in [off, end) of sector sec where good(buf, i)
        holds, or None."""
        end = self.bs if end is None or end > self.bs else end
        while off < end:
            mv = self.window(sec, off)
            n = len(mv)
            last = n if off + n >= self.bs else n - self.max_record
            last = min(last if last > 0 else 1, end - off)
            for i in range(last):
                if good(mv, i):
                    return off + i
            off += last
        return None

    def heads(self):
        """[(seq, sector)] of valid headers, newest first."""
        hs = []
        hdr = bytearray(HDR_LEN)
        for i in range(self.nsec):
            self.bdev.readblocks(i, hdr, 0)
            try:
                seq = parse_header(self.magic, hdr)
            except RingFault as e:
                raise RingFault("%s sector %d: %s; refusing to touch it"
                                % (self.name, i, e))
            if seq is not None:
                hs.append((seq, i))
        hs.sort(reverse=True)
        return hs

    def boot(self, parse, apply, trusted=None):
        """Find the newest sector whose first record `apply(tag, value, True)`
        accepts, feed it the sector's other records, and set the tail.
        Returns NEW (blank: the caller opens the first sector), OK, or DIRTY
        (the caller must open a fresh sector before writing: garbage follows
        the journal, or a newer sector was left half-opened)."""
        self.damage = []
        try:
            return self._boot(parse, apply, trusted)
        except OSError as e:
            raise RingFault("%s: flash read failed: %s" % (self.name, e))
        finally:
            self.release()

    def release(self):
        """Free the read window (it is allocated again when needed)."""
        self._win = None

    def _boot(self, parse, apply, trusted):
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
            first, end = True, None
            for off, tag, v in self.records(i, parse, trusted):
                if not apply(tag, v, first):
                    end = off   # a record the owner refuses ends the journal
                    break
                first = False
            if first:
                continue   # no acceptable first record: try an older sector
            if end is None:
                end = self.end
            self.cur, self.tail = i, end
            clean = self.end_erased if self.end == end and self.end_erased is not None \
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

    def after(self, parse, wanted, n):
        """The first n records, oldest first, that a journal's reader wants:
        wanted(tag, value) is True for a record after the reader's mark, False
        for one at or before it, None for a record of another kind. Reads the
        first record of each sector back from the newest to find where the
        wanted ones begin, then forward from there: what it holds does not
        grow with the journal, only with n."""
        out = []
        try:
            hs = self.heads()
            start = len(hs) - 1        # index in hs (newest first) to read from
            for i in range(len(hs)):
                if self._first(hs[i][1], parse, wanted) is False:
                    start = i
                    break
            for i in range(start, -1, -1):
                for _, tag, v in self.records(hs[i][1], parse):
                    if wanted(tag, v):
                        out.append(v)
                        if len(out) >= n:
                            return out
        finally:
            self.release()
        return out

    def _first(self, sec, parse, wanted):
        for _, tag, v in self.records(sec, parse):
            w = wanted(tag, v)
            if w is not None:
                return w
        return None

    # -- writing -------------------------------------------------------------

    def open_next(self, first):
        """Erase the next sector and open it with the record `first`."""
        nxt = (self.cur + 1) % self.nsec
        self.bdev.ioctl(6, nxt)
        self.seq += 1
        self.bdev.writeblocks(nxt, header(self.magic, self.seq), 0)
        self._program(nxt, first, HDR_LEN)
        self.cur, self.tail = nxt, HDR_LEN + len(first)

    def _program(self, sec, rec, off):
        """Write rec at off with its tag last: the tag commits it."""
        self.bdev.writeblocks(sec, memoryview(rec)[1:], off + 1)
        self.bdev.writeblocks(sec, memoryview(rec)[:1], off)

    def append(self, rec):
        """Write rec after the journal; False (nothing written) if it does not
        fit in the current sector."""
        if self.tail + len(rec) > self.bs:
            return False
        self._program(self.cur, rec, self.tail)
        self.tail += len(rec)
        return True
