# The credit ledger: a journal on its own flash partition (firmware/journal.py).
# Each sector opens with a STATE checkpoint followed by small records (energy,
# top-up, clock); when a sector is full the next one opens with a fresh
# checkpoint. Rare changes (price, standing charge, month, emergency credit,
# debt) write a STATE in place. A power cut at any byte of any write or erase
# leaves the last complete state readable. See docs/ledger.md.
# The registers and their arithmetic are firmware/registers.py.

from hashlib import sha256

from firmware import records as R
from firmware.journal import Journal
from firmware.registers import Registers, Rejected
from firmware.ring import NEW, RingFault

MAX_REF_BYTES = 64
MAX_AMOUNT = 0xFFFFFFFF
CLOCK_SAVE_S = 900    # the billing clock is written at least this often


class LedgerFault(Exception):
    """The partition cannot be used as a ledger; it is left untouched."""


def ref_digest(ref):
    if isinstance(ref, str):
        ref = ref.encode()
    if not 0 < len(ref) <= MAX_REF_BYTES:
        raise Rejected("top-up reference must be 1..%d bytes" % MAX_REF_BYTES)
    return sha256(ref).digest()[:R.REF_LEN]


def _trusted(buf, off):
    """A checkpoint (CRC-32, the whole state): safe to resume replay at."""
    return buf[off] in R.STATE_TAGS and R.parse(buf, off) is not None


class Ledger(Registers):
    """The registers (firmware/registers.py), kept on flash."""

    def __init__(self, bdev, imp_per_kwh=1600, price_per_kwh=0, initial_credit=0,
                 loss_bound_mwh=1000):
        try:
            self.journal = Journal(bdev, R.MAGIC, "ledger", R.MAX_RECORD, R.parse, _trusted)
        except RingFault as e:
            raise LedgerFault(str(e))
        # The registers of a new ledger, replaced by what flash holds if anything.
        super().__init__()
        self.credit = initial_credit
        self.price = price_per_kwh
        self.imp = imp_per_kwh
        self.tok_used = 1          # count 0 counts as used
        self.pending = 0        # pulses counted but not yet on flash
        try:
            status = self.journal.boot(self._replay)
        except RingFault as e:
            raise LedgerFault(str(e))
        # damaged records the boot recovered around (flash going bad, not a cut)
        self.damage = list(self.journal.damage)
        self.created = status == NEW
        if self.journal.fresh:
            # New, or garbage after the journal / a half-opened newer sector:
            # never write next to garbage, open a fresh sector from the state.
            self._rotate()
        self.set_loss_bound(loss_bound_mwh)

    def set_loss_bound(self, mwh):
        """Most energy (mWh) a power cut may lose: the number of pulses that
        may wait in RAM before a write. One pulse is the least possible."""
        self._loss_bound_mwh = mwh
        k = mwh * self.imp // 1000000
        self.flush_every = 1 if k < 1 else (255 if k > 255 else k)

    # -- boot ----------------------------------------------------------------

    def _replay(self, tag, v, first):
        """Apply one record read at boot; a sector must open with a STATE.
        A record that would move a growing register back is refused: the
        journal ends before it (and boot reports damage if more follows)."""
        if tag == R.TAG_STATE:
            if not first and self._goes_back(v[0]):
                return False
            self._restore(v)
        elif first:
            return False
        elif tag == R.TAG_ENERGY:
            self._apply_energy(v)
        elif tag == R.TAG_CLOCK:
            if v < self.time_s:
                return False
            self.time_s = v
        else:
            self._apply_topup(v[0], v[1], v[2], v[3])
        return True

    # -- writing -------------------------------------------------------------

    def _rotate(self, rec=None):
        """Open the next sector with a checkpoint, twice. rec: a record that
        did not fit (journal.put); the checkpoint carries what it held."""
        st = R.state(self._values(), self.refs)
        self.journal.open_next(st)
        self.journal.append(st)
        self.journal.fresh = False
        self.pending = 0

    def _append_state(self):
        """A checkpoint, written twice: should flash go bad under one copy,
        the other still holds every top-up (a cut is told apart: it leaves
        nothing after the record it tore)."""
        st = R.state(self._values(), self.refs)
        if not (self.journal.append(st) and self.journal.append(st)):
            self._rotate()

    def _checkpoint_after(self, change):
        """Apply change() to the registers and write a STATE; on a flash
        error the registers are restored and the error raised."""
        self.flush()
        snap = self._snapshot()
        change()
        try:
            self._append_state()
        except OSError:
            self._restore(snap)
            raise
        self.pending = 0

    def flush(self):
        while self.pending:
            n = self.pending if self.pending < 255 else 255
            self.journal.put(R.energy(n), self._rotate)
            if self.pending:  # a rotation persists everything at once
                self.pending -= n

    # -- operations ----------------------------------------------------------

    def consume(self, n):
        """Bill n new pulses at the current price; persist when the loss bound
        or a crossing of zero credit demands it. Returns the debit. Writes
        what n calls of consume(1) would (tests/test_batch.py): the pulses are
        taken in runs that end where one of those calls would have written."""
        if n <= 0:
            return 0
        debit = 0
        every = self.flush_every
        rec = R.energy(every)
        while n > 0:
            was_positive = self.credit > 0
            # pulses until the one that takes credit to zero (0: none comes)
            z = -((self.rem - self.credit * self.imp) // self.price) \
                if was_positive and self.price else 0
            m = n // every if self.pending == 0 else 0
            if z and z // every < m:
                m = z // every
            m = self.journal.room(len(rec), m)
            if m:
                # whole records that fit in the sector: one sum, m equal records
                debit += self._apply_energy(m * every)
                self.journal.append_run(rec, m)
                n -= m * every
                continue
            k = every - self.pending
            if k > n:
                k = n
            if z and z < k:
                k = z
            debit += self._apply_energy(k)
            self.pending += k
            n -= k
            if self.pending >= every or (was_positive and self.credit <= 0):
                self.flush()
        return debit

    def clock_due(self):
        """The billing clock time at which note_time() next writes it."""
        return self.time_s + CLOCK_SAVE_S

    def note_time(self, t, synced, save=False):
        """The billing clock reads t. The time register moves only when it is
        written: every CLOCK_SAVE_S (after a power cut the clock resumes close
        to where it was), and with save (a time sync). So what flash holds
        never depends on how often the shell steps (tests/test_batch.py)."""
        if t < self.time_s:
            return
        if synced != bool(self.synced):
            def change():
                self.time_s, self.synced = t, 1 if synced else 0
            self._checkpoint_after(change)
        elif t >= self.time_s + CLOCK_SAVE_S or (save and t > self.time_s):
            self.flush()
            self.time_s = t          # a checkpoint opening a sector carries it
            self.journal.put(R.clock(t), self._rotate)

    def set_price(self, price):
        """The price per kWh for the pulses that follow."""
        self._checkpoint_after(lambda: setattr(self, "price", price))

    def standing_charge(self, day, amount):
        """Debit the standing charge of `day` (days since 1970, local)."""
        self._checkpoint_after(lambda: self._apply_standing(day, amount))

    def new_month(self, key):
        self._checkpoint_after(lambda: self._apply_month(key))

    def take_emergency(self, amount):
        self._checkpoint_after(lambda: self._apply_emergency(amount))

    def set_debt(self, debt):
        if not isinstance(debt, int) or not 0 <= debt <= 10 ** 12:
            raise Rejected("debt must be 0..10^12 minor units")
        self._checkpoint_after(lambda: setattr(self, "debt", debt))

    def topup(self, ref, amount, debt_share_pct=0, debt_cap=0, vseq=None):
        """Add credit. Outstanding emergency credit is repaid first, then
        debt_share_pct of the rest (at most debt_cap) goes to debt. Returns
        the new credit once the record is on flash; raises Rejected for a bad
        amount, a reference seen before, or a vend sequence number (the
        head-end's, when it gives one) used before or too old to tell."""
        if not isinstance(amount, int) or not 0 < amount <= MAX_AMOUNT:
            raise Rejected("amount must be a whole number of minor units, 1..%d"
                           % MAX_AMOUNT)
        d = ref_digest(ref)
        if d in self.refs:
            raise Rejected("duplicate top-up reference %r" % (ref,))
        self._vend_check(vseq)
        to_em, to_debt = self._split(amount, debt_share_pct, debt_cap)
        self._record_topup(amount, d, to_em, to_debt, vseq)
        return self.credit

    def cancel(self, ref, vseq=None):
        """Make sure the top-up `ref` (vend `vseq`) never lands: both are kept
        as used, with nothing credited. Raises Rejected if used before."""
        d = ref_digest(ref)
        if d in self.refs:
            raise Rejected("reference %r was used already (applied or cancelled)" % (ref,))
        self._vend_check(vseq)
        self._record_topup(0, d, 0, 0, vseq)

    def _record_topup(self, amount, d, to_em, to_debt, vseq):
        def change():
            self._apply_topup(amount, d, to_em, to_debt)
            self._vend_mark(vseq)
        self._checkpoint_after(change)     # a checkpoint: it must survive damage

    def apply_token(self, kind, credit, count, used, debt_share_pct=0, debt_cap=0):
        """Apply an accepted OpenPAYGO token in one checkpoint: its credit
        and the token state land together or not at all. kind: 'add', 'set',
        'disable', 'sync'."""
        self._checkpoint_after(lambda: self._apply_token(kind, credit, count, used,
                                                         debt_share_pct, debt_cap))

    def token_fails(self, n):
        """Wrong tokens in a row, on flash (the lockout survives a reboot)."""
        if n != self.tok_fails:
            self._checkpoint_after(lambda: setattr(self, "tok_fails", n))

    def set_meter_constant(self, imp_per_kwh):
        """Change the pulses per kWh. The energy registers are converted (a
        fraction of one new pulse may be dropped), money is untouched."""
        if not isinstance(imp_per_kwh, int) or not 100 <= imp_per_kwh <= 100000:
            raise Rejected("meter constant must be 100..100000 imp/kWh")
        self._checkpoint_after(lambda: self._convert_imp(imp_per_kwh))
        self.set_loss_bound(self._loss_bound_mwh)
