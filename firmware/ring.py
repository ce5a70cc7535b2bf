# A ring of flash sectors: the storage under every journal (firmware/journal.py
# holds boot, recovery and the append-or-rotate step the four stores share).
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

import struct
from binascii import crc32

HDR_LEN = 16
VERSION = 1
ERASED = 0xFF
WINDOW = 1024        # boot reads a sector through a window this size
# One window for every ring, taken at import while the heap is still in one
# piece: a KiB asked for later (a `log` command) may not be free in one block
# in a fragmented heap. Each read consumes it before another ring reads (the
# parsers copy what they keep).
_WIN = bytearray(WINDOW)

NEW, OK, DIRTY = 0, 1, 2


class RingFault(Exception):
    """The partition holds no usable journal; it is left untouched."""


def header(magic, seq):
    b = magic + struct.pack("<HHI", VERSION, 0, seq)
    return b + struct.pack("<I", crc32(b))


def parse_header(magic, b):
    """seq of a valid header, None if none; raises RingFault for a header of a
    format version this firmware does not know."""
    if b[:4] != magic or struct.unpack_from("<I", b, 12)[0] != crc32(memoryview(b)[:12]):
        return None
    ver, _, seq = struct.unpack_from("<HHI", b, 4)
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
        self.damage = []           # (sector, offset) of damaged records found at boot

    # -- reading -------------------------------------------------------------

    def window(self, sec, off):
        """Sector bytes from `off`, at most WINDOW of them. Boot never asks for
        a sector-sized buffer: on the device a 4 KiB block may not be free in
        a fragmented heap."""
        n = self.bs - off
        mv = memoryview(_WIN)[:n if n < WINDOW else WINDOW]
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

    def records(self, sec, parse, trusted=None, ends=None):
        """Yield (offset, tag, value) for the records of one sector, in order.
        With `trusted`, a damaged record followed by a trusted one is skipped.
        `ends`, a list, gets where the journal of the sector ended and whether
        all after it is erased (None: not looked)."""
        off, base, mv = HDR_LEN, 0, None
        while True:
            if mv is None or (off + self.max_record > base + len(mv)
                              and base + len(mv) < self.bs):
                base = off
                mv = self.window(sec, off)
            r = parse(mv, off - base)
            if r is None:
                erased = None
                if trusted:
                    # erased space is the journal's end; anything else is a
                    # torn record (a cut) or damage, told apart by what follows
                    erased = self.erased_from(sec, off)
                    nxt = None if erased else self.find(sec, off + 1, trusted)
                    if nxt is not None:
                        self.damage.append((sec, off))
                        off, mv = nxt, None
                        continue
                if ends is not None:
                    ends[:] = (off, erased)
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

    def append_run(self, rec, m):
        """append(rec) m times; the caller checked that they fit (room())."""
        w, sec, n = self.bdev.writeblocks, self.cur, len(rec)
        body, tag = memoryview(rec)[1:], memoryview(rec)[:1]
        for _ in range(m):
            w(sec, body, self.tail + 1)     # each committed by its tag, as _program does
            w(sec, tag, self.tail)
            self.tail += n

    def append(self, rec):
        """Write rec after the journal; False (nothing written) if it does not
        fit in the current sector."""
        if self.tail + len(rec) > self.bs:
            return False
        self._program(self.cur, rec, self.tail)
        self.tail += len(rec)
        return True
