# OpenPAYGO Token, device side: decode a numeric token typed by the customer.
# Written from the published algorithm; tests/test_tokens.py holds it to the
# outcomes of the reference library (`openpaygo` on PyPI) over thousands of
# tokens.
#
# A token is the meter's starting code walked forward `count` steps through a
# SipHash-2-4 chain (the meter's 16-byte key), with its last 3 digits (6 for
# extended 12-digit tokens) replaced by the value added to the starting code's.
# Even counts are ADD tokens; odd counts are SET, DISABLE_PAYG (value 998) or
# COUNTER_SYNC (value 999). Restricted-digit tokens spell the same number in
# digits 1-4, two bits per digit.

from firmware.siphash import halves

ADD, SET, DISABLE_PAYG, COUNTER_SYNC = 1, 2, 3, 4
INVALID, ALREADY_USED = 10, 11
NAMES = {ADD: "add", SET: "set", DISABLE_PAYG: "disable_payg",
         COUNTER_SYNC: "counter_sync", INVALID: "invalid", ALREADY_USED: "already_used"}
SHORT_NAMES = {ADD: "add", SET: "set", DISABLE_PAYG: "disable", COUNTER_SYNC: "sync"}  # event detail
DISABLE_VALUE, SYNC_VALUE = 998, 999
JUMP, JUMP_SYNC = 64, 100       # how far ahead of the last count a token may be
OLDER = 16                      # older unused ADD tokens still accepted


def _fold32(lo, hi):
    """The halves of a hash XORed, bits 2..31 kept, folded into 9 digits."""
    x = (lo ^ hi) >> 2
    return x - 73741825 if x > 999999999 else x


def _chain32(code, key):
    """Next standard code: SipHash of the code (4 bytes, twice), folded."""
    b = code.to_bytes(4, "big")
    lo, hi = halves(key, b + b)
    return _fold32(lo, hi)


def _chain64(code, key):
    """Next extended code: SipHash of the code (8 bytes), bits 24..63 kept,
    folded into 12 digits."""
    lo, hi = halves(key, code.to_bytes(8, "big"))
    x = hi << 8 | lo >> 24
    return x - 99511627777 if x > 999999999999 else x


def starting_code(key):
    """The starting code a key implies when none was provisioned."""
    lo, hi = halves(key, key)
    return _fold32(lo, hi)


def _from_restricted(digits):
    n = 0
    for ch in digits:
        d = ord(ch) - 49          # '1'..'4' -> 0..3
        if not 0 <= d <= 3:
            raise ValueError("a restricted token uses the digits 1 to 4 only")
        n = (n << 2) | d
    return n


def _count_ok(count, last, value, kind, used):
    if value == SYNC_VALUE:
        return count > last - JUMP
    if count > last:
        return True
    return count > last - OLDER and count not in used and kind == ADD


def _new_used(used, value, count, kind):
    top = max(used) if used else count
    if count > top:
        top = count
    window = range(top - OLDER, top + 1)
    if kind != ADD or value in (SYNC_VALUE, DISABLE_VALUE):
        return [c for c in window]
    return [c for c in window if c == count or c in used]


def check_text(text, restricted=False):
    """The token as typed, if it can be one at all; else ValueError."""
    text = text.strip()
    if not text or not all("0" <= c <= "9" for c in text):
        raise ValueError("a token is digits only")
    if len(text) > (20 if restricted else 12):
        raise ValueError("token too long")
    if restricted and not all("1" <= c <= "4" for c in text):
        raise ValueError("a restricted token uses the digits 1 to 4 only")
    return text


def decode(text, key, last_count, used, start_code, restricted=False):
    """Decode a token typed as text. Returns (kind, value, count, used):
    kind is ADD, SET, DISABLE_PAYG, COUNTER_SYNC, INVALID or ALREADY_USED;
    value and count are None unless accepted; used is the new list of used
    counts. Raises ValueError for text that cannot be a token at all."""
    text = check_text(text, restricted)
    n = len(text)
    extended = n > (15 if restricted else 9)
    token = _from_restricted(text) if restricted else int(text)
    mod = 1000000 if extended else 1000
    chain = _chain64 if extended else _chain32
    base = token % mod
    value = (base - start_code % mod) % mod
    code = start_code - start_code % mod + base
    tries = last_count + (JUMP_SYNC if value == SYNC_VALUE and not extended else JUMP) + 1
    older = False
    for count in range(tries):
        if code - code % mod + base == token:
            if count % 2 == 0:
                kind = ADD
            elif extended:
                kind = SET
            else:
                kind = SYNC_VALUE == value and COUNTER_SYNC or (
                    DISABLE_VALUE == value and DISABLE_PAYG or SET)
            if _count_ok(count, last_count, value, kind, used):
                return kind, value, count, _new_used(used, value, count, kind)
            older = True
        code = chain(code, key)
    return (ALREADY_USED if older else INVALID), None, None, used
