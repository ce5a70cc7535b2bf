# The credit ledger: a journal on its own flash partition (a firmware.ring).
# Each sector opens with a STATE checkpoint followed by small delta records
# (energy, top-up); when a sector is full the next one opens with a fresh
# checkpoint. A power cut at any byte of any write or erase leaves the last
# complete state readable. See docs/ledger.md for the format and the reasoning.

from hashlib import sha256

from firmware import records as R
from firmware import ring
from firmware.tariff import flat_cost

MAX_REF_BYTES = 64
MAX_AMOUNT = 0xFFFFFFFF


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
        try:
            self.ring = ring.SectorRing(bdev, R.MAGIC, "ledger", R.MAX_RECORD)
        except ring.RingFault as e:
            raise LedgerFault(str(e))
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
        try:
            status = self.ring.boot(R.parse, self._replay)
        except ring.RingFault as e:
            raise LedgerFault(str(e))
        self.created = status == ring.NEW
        if status != ring.OK:
            # New, or garbage after the journal / a half-opened newer sector:
            # never write next to garbage, open a fresh sector from the state.
            self._rotate()
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

    def _replay(self, tag, v, first):
        """Apply one record read at boot; a sector must open with a STATE."""
        if tag == R.TAG_STATE:
            self._load(v)
        elif first:
            return False
        elif tag == R.TAG_ENERGY:
            self._apply_energy(v)
        else:
            self._apply_topup(v[0], v[1])
        return True

    # -- writing -------------------------------------------------------------

    def _rotate(self):
        self.ring.open_next(R.state(self._tuple()))
        self.pending = 0

    def _append(self, rec):
        """Persist one record; when the sector is full, a fresh checkpoint in
        the next sector carries everything instead."""
        if not self.ring.append(rec):
            self._rotate()

    def flush(self):
        while self.pending:
            n = self.pending if self.pending < 255 else 255
            self._append(R.energy(n))
            if self.pending:  # a rotation persists everything at once
                self.pending -= n

    def set_meter_constant(self, imp_per_kwh):
        """Change the pulses per kWh. The energy register is converted (a
        fraction of one new pulse may be dropped), money is untouched."""
        if not isinstance(imp_per_kwh, int) or not 100 <= imp_per_kwh <= 100000:
            raise Rejected("meter constant must be 100..100000 imp/kWh")
        self.flush()
        before = self._tuple()
        old = self.imp
        self.pulses = self.pulses * imp_per_kwh // old
        self.rem = self.rem * imp_per_kwh // old
        self.imp = imp_per_kwh
        try:
            self._rotate()
        except OSError:
            self._load(before)
            raise
        self.set_loss_bound(self._loss_bound_mwh)

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
