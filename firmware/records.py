# On-flash record formats of the ledger journal (all little-endian).
#
# Sectors are a firmware.journal with magic b"PPLG"; the ring programs each
# record tag last, so the tag is its commit mark (see firmware/ring.py).
# STATE 0xF3: u8 tag, u16 len, FIELDS..., u8 nrefs, refs, u32 crc32 -- a checkpoint
# ENERGY 0xF5: u8 tag, u8 pulses (1..255), u16 crc   -- 4 bytes, the hot path
# CLOCK 0xF6: u8 tag, u32 billing time (UTC seconds), u32 crc32
# crc16 is the low half of CRC-32 over the bytes before it; the tags have six 1
# bits each, so a half-programmed tag is none of them.
# Read but no longer written (images of earlier releases wrote the tag first):
# STATE 's' 0x73 (FIELDS without the vend sequence), ENERGY 'E' 0x45, CLOCK
# 'K' 0x4B (u16 crc); TOPUP 'U' (u8 tag, u32 amount, 8 B ref digest, u32 to_emergency,
# u32 to_debt, u16 crc) and, from the first release, STATE 'S' (the first 8
# fields only) and TOPUP 'T' (amount and ref, no split).
# Erased flash reads 0xFF, so a tag of 0xFF marks the end of the journal;
# anything else that fails its check is a torn or damaged record and ends the
# replay too.

import struct
from binascii import crc32

from firmware.journal import intact, seal

MAGIC = b"PPLG"
TAG_STATE = 0xF3
TAG_ENERGY = 0xF5
TAG_CLOCK = 0xF6
TAG_TOPUP = 0x55               # parsed records of these kinds come back with the
OLD_STATE = 0x73               # current tags; TOPUP has no current format
OLD_STATE_V1 = 0x53
OLD_ENERGY = 0x45
OLD_CLOCK = 0x4B
OLD_TOPUP_V1 = 0x54
STATE_TAGS = (TAG_STATE, OLD_STATE, OLD_STATE_V1)
REF_LEN = 8
MAX_REFS = 32                          # references a checkpoint carries

# The ledger's registers, in STATE order. All money in minor units.
FIELDS = (
    ("credit", "q"), ("pulses", "Q"), ("billed", "q"), ("topups", "q"),
    ("rem", "I"), ("price", "I"), ("imp", "I"), ("topup_count", "I"),
    ("time_s", "I"), ("synced", "B"), ("month_key", "I"), ("month_pulses", "Q"),
    ("standing_day", "I"), ("standing_total", "q"), ("debt", "q"),
    ("debt_recovered", "q"), ("emergency", "q"), ("emergency_given", "q"),
    ("emergency_repaid", "q"),
    # OpenPAYGO Token: SET tokens' net change of credit, the last token count,
    # the used counts as a mask (bit i: tok_count - i), PAYG off, wrong tokens
    ("adjusted", "q"), ("tok_count", "I"), ("tok_used", "I"), ("payg_off", "B"),
    ("tok_fails", "I"),
    # the head-end's vend sequence: the highest seen, and which of the 32 up to
    # it were used (bit i: vend_hi - i)
    ("vend_hi", "I"), ("vend_win", "I"),
)
NAMES = tuple(f[0] for f in FIELDS)
STATE_FMT = "<" + "".join(f[1] for f in FIELDS) + "B"
STATE_FIXED = struct.calcsize(STATE_FMT)
V1_FMT = "<qQqqIIIIB"
V1_FIXED = struct.calcsize(V1_FMT)
V2_FMT = "<" + "".join(f[1] for f in FIELDS[:-2]) + "B"     # OLD_STATE: no vend sequence
V2_FIXED = struct.calcsize(V2_FMT)
MAX_RECORD = 3 + STATE_FIXED + MAX_REFS * REF_LEN + 4
CLOCK_LEN = 9
# the records with a 16-bit check: length, and the tag they parse as
SMALL = {TAG_ENERGY: (4, TAG_ENERGY), OLD_ENERGY: (4, TAG_ENERGY),
         OLD_CLOCK: (7, TAG_CLOCK), TAG_TOPUP: (23, TAG_TOPUP), OLD_TOPUP_V1: (15, TAG_TOPUP)}


def energy(n):
    b = bytes((TAG_ENERGY, n))
    return b + struct.pack("<H", crc32(b) & 0xFFFF)


def clock(t):
    return seal(struct.pack("<BI", TAG_CLOCK, t))


def state(values, refs):
    """values: the registers in FIELDS order."""
    payload = struct.pack(STATE_FMT, *(tuple(values) + (len(refs),))) + b"".join(refs)
    return seal(struct.pack("<BH", TAG_STATE, len(payload)) + payload)


def _parse_state(buf, off, end, tag):
    if off + 3 > end:
        return None
    ln = struct.unpack_from("<H", buf, off + 1)[0]
    fmt, fixed = (V1_FMT, V1_FIXED) if tag == OLD_STATE_V1 else \
        (V2_FMT, V2_FIXED) if tag == OLD_STATE else (STATE_FMT, STATE_FIXED)
    if ln < fixed or not intact(buf, off, 3 + ln + 4):
        return None
    v = struct.unpack_from(fmt, buf, off + 3)
    k = v[-1]
    if fixed + k * REF_LEN != ln:
        return None
    values = list(v[:-1]) + [0] * (len(FIELDS) - (len(v) - 1))
    p = off + 3 + fixed
    refs = [bytes(buf[p + i * REF_LEN:p + (i + 1) * REF_LEN]) for i in range(k)]
    return TAG_STATE, (values, refs), off + 3 + ln + 4


def parse(buf, off):
    """(tag, value, next_off) for the record at off, or None at the end of the
    journal (erased space, a torn or damaged record, or the end of the
    sector). Records of earlier formats come back as their current kinds."""
    end = len(buf)
    if off >= end:
        return None
    tag = buf[off]
    if tag in STATE_TAGS:
        return _parse_state(buf, off, end, tag)
    if tag == TAG_CLOCK:
        if not intact(buf, off, CLOCK_LEN):
            return None
        return TAG_CLOCK, struct.unpack_from("<I", buf, off + 1)[0], off + CLOCK_LEN
    n, kind = SMALL.get(tag, (0, 0))
    if not n or not intact(buf, off, n, 2):
        return None
    nxt = off + n
    if kind == TAG_ENERGY:
        return (kind, buf[off + 1], nxt) if buf[off + 1] else None
    if kind == TAG_CLOCK:
        return kind, struct.unpack_from("<I", buf, off + 1)[0], nxt
    amount = struct.unpack_from("<I", buf, off + 1)[0]
    ref = bytes(buf[off + 5:off + 13])
    split = (0, 0) if tag == OLD_TOPUP_V1 else struct.unpack_from("<II", buf, off + 13)
    return TAG_TOPUP, (amount, ref, split[0], split[1]), nxt
