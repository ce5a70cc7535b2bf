# The ledger's registers and the arithmetic on them: what a pulse, a top-up,
# a vend sequence number or a token does to credit, energy and debt. Nothing
# here touches flash; firmware/ledger.py persists every change it makes.

from firmware import records as R
from firmware.tariff import flat_cost

VEND_WINDOW = 32      # vend sequence numbers remembered below the highest

# Registers that only ever grow: a record that would take one back is damage,
# however well it checks (a second line of defence after the commit mark).
MONOTONE = ("billed", "topups", "topup_count", "time_s", "standing_total",
            "debt_recovered", "emergency_given", "emergency_repaid")


class Rejected(Exception):
    """A request the ledger refused; nothing was changed."""


class Registers:
    # The registers (records.FIELDS), with a new ledger's values.
    credit = pulses = billed = topups = rem = price = imp = topup_count = 0
    time_s = synced = month_key = month_pulses = standing_day = standing_total = 0
    debt = debt_recovered = emergency = emergency_given = emergency_repaid = 0
    adjusted = tok_count = tok_used = payg_off = tok_fails = 0
    vend_hi = vend_win = 0

    def __init__(self):
        self.refs = []            # digests of the latest top-up references

    def _values(self):
        return [getattr(self, n) for n in R.NAMES]

    def _goes_back(self, values):
        """A checkpoint would move a growing register back."""
        for i, n in enumerate(R.NAMES):
            if n in MONOTONE and values[i] < getattr(self, n):
                return True
        return False

    def _snapshot(self):
        return self._values(), list(self.refs)

    def _restore(self, snap):
        for n, v in zip(R.NAMES, snap[0]):
            setattr(self, n, v)
        self.refs = list(snap[1])

    def _apply_energy(self, n):
        debit, self.rem = flat_cost(n, self.price, self.imp, self.rem)
        self.credit -= debit
        self.billed += debit
        self.pulses += n
        self.month_pulses += n
        return debit

    def _apply_standing(self, day, amount):
        self.credit -= amount
        self.standing_total += amount
        self.standing_day = day

    def _apply_month(self, key):
        self.month_key = key
        self.month_pulses = 0

    def _apply_emergency(self, amount):
        self.credit += amount
        self.emergency += amount
        self.emergency_given += amount

    def _apply_topup(self, amount, digest, to_emergency, to_debt):
        self.credit += amount - to_emergency - to_debt
        self.topups += amount
        if amount:                      # 0: a cancelled vend's reference
            self.topup_count += 1
        self.emergency -= to_emergency
        self.emergency_repaid += to_emergency
        self.debt -= to_debt
        self.debt_recovered += to_debt
        if digest is not None:
            self.refs.append(digest)
            if len(self.refs) > R.MAX_REFS:
                self.refs.pop(0)

    def _vend_check(self, vseq):
        """A vend sequence number lands once: above the highest seen, or below
        it within the window and not used. Older ones cannot be told apart
        and are refused, never applied (the head-end keeps its pending vends
        inside the window, docs/vending.md)."""
        if vseq is None:
            return
        if not isinstance(vseq, int) or not 0 < vseq <= 0xFFFFFFFF:
            raise Rejected("vend sequence must be 1..4294967295")
        hi = self.vend_hi
        if vseq <= hi - VEND_WINDOW:
            raise Rejected("stale vend %d: this meter keeps vends %d..%d; not applied"
                           % (vseq, hi - VEND_WINDOW + 1, hi))
        if vseq <= hi and self.vend_win >> (hi - vseq) & 1:
            raise Rejected("vend %d was used already (applied or cancelled)" % vseq)

    def _vend_mark(self, vseq):
        if vseq is None:
            return
        d = vseq - self.vend_hi
        if d > 0:
            self.vend_win = (self.vend_win << d | 1) & 0xFFFFFFFF if d < VEND_WINDOW else 1
            self.vend_hi = vseq
        else:
            self.vend_win |= 1 << -d

    def _split(self, amount, debt_share_pct, debt_cap):
        """What of a top-up repays emergency credit (all of it first), and
        what goes to debt (a share of the rest, capped)."""
        to_em = min(amount, self.emergency) if self.emergency > 0 else 0
        to_debt = min(self.debt, (amount - to_em) * debt_share_pct // 100, debt_cap) \
            if self.debt > 0 else 0
        return to_em, to_debt


    def token_used(self):
        """The used token counts, as the decoder takes them."""
        return [self.tok_count - i for i in range(17) if self.tok_used >> i & 1]

    def _apply_token(self, kind, credit, count, used, debt_share_pct, debt_cap):
        if kind == "add":
            to_em, to_debt = self._split(credit, debt_share_pct, debt_cap)
            self._apply_topup(credit, None, to_em, to_debt)
        elif kind == "set":
            self.adjusted += credit - self.credit
            self.credit = credit
        if kind in ("add", "set"):
            self.payg_off = 0
        elif kind == "disable":
            self.payg_off = 1
        top = count if count > self.tok_count else self.tok_count
        mask = 0
        for c in used:
            if 0 <= top - c <= 16:
                mask |= 1 << (top - c)
        self.tok_count, self.tok_used, self.tok_fails = top, mask, 0

    def _convert_imp(self, imp_per_kwh):
        """A new meter constant: the energy registers are converted (a
        fraction of one new pulse may be dropped), money is untouched."""
        old = self.imp
        self.pulses = self.pulses * imp_per_kwh // old
        self.month_pulses = self.month_pulses * imp_per_kwh // old
        self.rem = self.rem * imp_per_kwh // old
        self.imp = imp_per_kwh
