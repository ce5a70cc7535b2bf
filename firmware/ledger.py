# The credit ledger: a journal of records on a raw flash partition.
#
# The partition is a ring of erase blocks ("sectors"). Each sector starts with a
# header carrying a sequence number, then a STATE checkpoint, then small delta
# records (energy, top-up). When a sector is full the next one in the ring is
# erased and opened with a fresh checkpoint, so:
#   - boot reads every header, then one sector: its cost never grows with history;
#   - every sector is erased in turn: wear is even across the partition;
#   - the sector being written is never the one erased, so a power cut at any
#     byte of any write or erase leaves the previous complete state readable.
# See docs/ledger.md for the format and the reasoning.

from hashlib import sha256

from firmware import records as R
from firmware.tariff import flat_cost

MAX_REF_BYTES = 64
MAX_AMOUNT = 0xFFFFFFFF
WINDOW = 1024         # boot reads a sector through a window this size


class LedgerFault(Exception):
    """The partition cannot be used as a ledger; it is left untouched."""


class Rejected(Exception):
    """A request the ledger refused; nothing was changed."""


def ref_digest(ref):
    if isinstance(ref, str):
        ref = ref.encode()
    if not 0 < len(ref) <= MAX_REF_BYTES:
        raise Rejected("top-up reference must be 1..%d bytes" % MAX_REF_BYTES)
    return sha256(ref).digest()[:R.REF_LEN]


class Ledger:
    def __init__(self, bdev, imp_per_kwh=1600, price_per_kwh=0, initial_credit=0,
                 loss_bound_mwh=1000):
        self.bdev = bdev
        try:
            self.nsec = bdev.ioctl(4, 0)
            self.bs = bdev.ioctl(5, 0) or 512
        except OSError as e:
            raise LedgerFault("flash geometry unreadable: %s" % e)
        if self.nsec < 2 or self.bs < 512:
            raise LedgerFault("ledger partition too small: %d x %d bytes"
                              % (self.nsec, self.bs))
        # State of a new ledger, replaced by what flash holds if anything.
        self.credit = initial_credit
        self.pulses = 0
        self.billed = 0
        self.topups = 0
        self.rem = 0
        self.price = price_per_kwh
        self.imp = imp_per_kwh
        self.topup_count = 0
        self.refs = []
        self.pending = 0        # pulses counted but not yet on flash
        self.created = False    # True when this boot formatted a blank partition
        self._loss_bound_mwh = loss_bound_mwh
        try:
            self._boot()
        except OSError as e:
            raise LedgerFault("flash read failed: %s" % e)
        self.set_loss_bound(loss_bound_mwh)

    # -- state ---------------------------------------------------------------

    def _tuple(self):
        return (self.credit, self.pulses, self.billed, self.topups, self.rem,
                self.price, self.imp, self.topup_count, list(self.refs))

    def _load(self, s):
        (self.credit, self.pulses, self.billed, self.topups, self.rem,
         self.price, self.imp, self.topup_count, self.refs) = s

    def _apply_energy(self, n):
        debit, self.rem = flat_cost(n, self.price, self.imp, self.rem)
        self.credit -= debit
        self.billed += debit
        self.pulses += n
        return debit

    def _apply_topup(self, amount, digest):
        self.credit += amount
        self.topups += amount
        self.topup_count += 1
        self.refs.append(digest)
        if len(self.refs) > R.MAX_REFS:
            self.refs.pop(0)

    def set_loss_bound(self, mwh):
        """Most energy (mWh) a power cut may lose: the number of pulses that
        may wait in RAM before a write. One pulse is the least possible."""
        self._loss_bound_mwh = mwh
        k = mwh * self.imp // 1000000
        self.flush_every = 1 if k < 1 else (255 if k > 255 else k)

    @property
    def persisted_pulses(self):
        return self.pulses - self.pending

    # -- boot ----------------------------------------------------------------

    def _window(self, sec, off):
        """Read sector bytes from `off` into the boot window. Boot never asks
        for a sector-sized buffer: on the device a 4 KiB block may not be
        free in a fragmented heap."""
        n = self.bs - off
        mv = memoryview(self._win)[:n if n < WINDOW else WINDOW]
        self.bdev.readblocks(sec, mv, off)
        return mv

    def _erased_from(self, sec, off):
        while off < self.bs:
            mv = self._window(sec, off)
            for b in mv:
                if b != R.ERASED:
                    return False
            off += len(mv)
        return True

    def _boot(self):
        self._win = bytearray(WINDOW)
        try:
            self._boot_scan()
        finally:
            self._win = None

    def _boot_scan(self):
        heads = []
        hdr = bytearray(R.HDR_LEN)
        for i in range(self.nsec):
            self.bdev.readblocks(i, hdr, 0)
            try:
                seq = R.parse_header(hdr)
            except ValueError as e:
                raise LedgerFault("sector %d: %s; refusing to touch it" % (i, e))
            if seq is not None:
                heads.append((seq, i))
        if not heads:
            if self._unformatted():
                self._format()
                return
            raise LedgerFault("partition holds no ledger (foreign or damaged "
                              "image); not formatting it, as it may hold credit")
        heads.sort(reverse=True)
        self._seq = heads[0][0]
        for seq, i in heads:
            off = self._replay(i)
            if off is None:
                continue
            self._cur, self._tail = i, off
            if seq != self._seq or not self._erased_from(i, off):
                # A torn record or a half-opened newer sector: never write
                # next to garbage, start a fresh sector from the good state.
                self._rotate()
            return
        if heads == [(1, 0)] and self._unformatted():
            self._format()
            return
        raise LedgerFault("no intact ledger state in %d sectors; not formatting"
                          % len(heads))

    def _replay(self, sec):
        """Load the sector's checkpoint and apply the records after it; the
        offset where the journal ends, or None without a valid checkpoint."""
        off, base, mv = R.HDR_LEN, 0, None
        while True:
            if mv is None or (off + R.MAX_RECORD > base + len(mv)
                              and base + len(mv) < self.bs):
                base = off
                mv = self._window(sec, off)
            r = R.parse(mv, off - base)
            if r is None:
                return None if off == R.HDR_LEN else off
            tag, v, nxt = r
            if off == R.HDR_LEN and tag != R.TAG_STATE:
                return None
            off = base + nxt
            if tag == R.TAG_ENERGY:
                self._apply_energy(v)
            elif tag == R.TAG_TOPUP:
                self._apply_topup(v[0], v[1])
            else:
                self._load(v)

    def _unformatted(self):
        """True for an erased partition, or one whose very first format was
        cut short: sector 0 holds at most a torn prefix of the first header
        and of a new ledger's state, and every other byte is erased. Anything
        else may be somebody's data and is never formatted."""
        first = R.header(1)
        mv = self._window(0, 0)
        k = 0
        while k < R.HDR_LEN and mv[k] == first[k]:
            k += 1
        if k < R.HDR_LEN:
            # a torn byte keeps every 1 bit it was meant to have
            if mv[k] & first[k] != first[k]:
                return False
            start = k + 1
        else:
            start = R.HDR_LEN + R.FRESH_STATE_LEN
        if not self._erased_from(0, start):
            return False
        for i in range(1, self.nsec):
            if not self._erased_from(i, 0):
                return False
        return True

    def _format(self):
        self.created = True
        self._seq = 0
        self._cur = self.nsec - 1  # so the first sector opened is sector 0
        self._rotate()

    # -- writing -------------------------------------------------------------

    def _rotate(self):
        nxt = (self._cur + 1) % self.nsec
        self.bdev.ioctl(6, nxt)
        self._seq += 1
        self.bdev.writeblocks(nxt, R.header(self._seq), 0)
        st = R.state(self._tuple())
        self.bdev.writeblocks(nxt, st, R.HDR_LEN)
        self._cur, self._tail = nxt, R.HDR_LEN + len(st)
        self.pending = 0

    def _append(self, rec):
        """Persist one record; when the sector is full, a fresh checkpoint in
        the next sector carries everything instead."""
        if self._tail + len(rec) > self.bs:
            self._rotate()
            return
        self.bdev.writeblocks(self._cur, rec, self._tail)
        self._tail += len(rec)

    def flush(self):
        while self.pending:
            n = self.pending if self.pending < 255 else 255
            self._append(R.energy(n))
            if self.pending:  # a rotation persists everything at once
                self.pending -= n

    def checkpoint(self):
        """Write the full state now (a clean shutdown, or a price change)."""
        self._rotate()

    # -- operations ----------------------------------------------------------

    def consume(self, n):
        """Bill n new pulses; persist when the loss bound or a crossing of
        zero credit demands it. Returns the debit in minor units."""
        if n <= 0:
            return 0
        was_positive = self.credit > 0
        debit = self._apply_energy(n)
        self.pending += n
        if self.pending >= self.flush_every or (was_positive and self.credit <= 0):
            self.flush()
        return debit

    def topup(self, ref, amount):
        """Add credit. Returns the new credit once the record is on flash;
        raises Rejected for a bad amount or a reference seen before."""
        if not isinstance(amount, int) or not 0 < amount <= MAX_AMOUNT:
            raise Rejected("amount must be a whole number of minor units, 1..%d"
                           % MAX_AMOUNT)
        d = ref_digest(ref)
        if d in self.refs:
            raise Rejected("duplicate top-up reference %r" % (ref,))
        self.flush()
        before = self._tuple()
        self._apply_topup(amount, d)
        try:
            self._append(R.topup(amount, d))
        except OSError:
            self._load(before)
            raise
        return self.credit
