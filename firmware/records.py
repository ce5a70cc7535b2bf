# On-flash record formats of the ledger journal (all little-endian).
#
# Sectors are a firmware.ring with magic b"PPLG".
# STATE 's': u8 tag, u16 len, FIELDS..., u8 nrefs, refs, u32 crc32 -- a checkpoint
# ENERGY 'E': u8 tag, u8 pulses, u16 crc              -- 4 bytes, the hot path
# TOPUP 'U': u8 tag, u32 amount, 8 B ref digest, u32 to_emergency, u32 to_debt, u16 crc
#            (read, no longer written: a top-up is now a checkpoint written twice)
# CLOCK 'K': u8 tag, u32 billing time (UTC seconds), u16 crc
# Read but no longer written (format of the first release): STATE 'S' (the
# first 8 fields only) and TOPUP 'T' (amount and ref, no split).
# crc16 is the low half of CRC-32 over the bytes before it. Erased flash reads
# 0xFF, so a tag of 0xFF marks the end of the journal; anything else that fails
# its check is a torn or damaged record and ends the replay too.

import struct
from binascii import crc32

MAGIC = b"PPLG"
TAG_STATE = 0x73
TAG_STATE_V1 = 0x53
TAG_ENERGY = 0x45
TAG_TOPUP = 0x55
TAG_TOPUP_V1 = 0x54
TAG_CLOCK = 0x4B
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
)
NAMES = tuple(f[0] for f in FIELDS)
STATE_FMT = "<" + "".join(f[1] for f in FIELDS) + "B"
STATE_FIXED = struct.calcsize(STATE_FMT)
V1_FMT = "<qQqqIIIIB"
V1_FIXED = struct.calcsize(V1_FMT)
MAX_RECORD = 3 + STATE_FIXED + MAX_REFS * REF_LEN + 4
LEN = {TAG_ENERGY: 4, TAG_TOPUP: 23, TAG_TOPUP_V1: 15, TAG_CLOCK: 7}


def _crc16(b):
    return struct.pack("<H", crc32(b) & 0xFFFF)


def _small(b):
    return b + _crc16(b)


def energy(n):
    return _small(bytes((TAG_ENERGY, n)))


def clock(t):
    return _small(struct.pack("<BI", TAG_CLOCK, t))


def state(values, refs):
    """values: the registers in FIELDS order."""
    payload = struct.pack(STATE_FMT, *(tuple(values) + (len(refs),))) + b"".join(refs)
    b = struct.pack("<BH", TAG_STATE, len(payload)) + payload
    return b + struct.pack("<I", crc32(b))


def _refs(body, p, k):
    return [body[p + i * REF_LEN:p + (i + 1) * REF_LEN] for i in range(k)]


def _parse_state(buf, off, end, tag):
    if off + 3 > end:
        return None
    ln = struct.unpack("<H", bytes(buf[off + 1:off + 3]))[0]
    nxt = off + 3 + ln + 4
    fmt, fixed = (STATE_FMT, STATE_FIXED) if tag == TAG_STATE else (V1_FMT, V1_FIXED)
    if ln < fixed or nxt > end:
        return None
    body = bytes(buf[off:nxt - 4])
    if struct.unpack("<I", bytes(buf[nxt - 4:nxt]))[0] != crc32(body):
        return None
    v = struct.unpack(fmt, body[3:3 + fixed])
    k = v[-1]
    if fixed + k * REF_LEN != ln:
        return None
    values = list(v[:-1]) + [0] * (len(FIELDS) - (len(v) - 1))
    return TAG_STATE, (values, _refs(body, 3 + fixed, k)), nxt


def parse(buf, off):
    """(tag, value, next_off) for the record at off, or None at the end of the
    journal (erased space, a torn record, or the end of the sector). Records
    of the first format come back as their current equivalents."""
    end = len(buf)
    if off >= end:
        return None
    tag = buf[off]
    if tag == TAG_STATE or tag == TAG_STATE_V1:
        return _parse_state(buf, off, end, tag)
    n = LEN.get(tag)
    if n is None or off + n > end:
        return None
    nxt = off + n
    if bytes(buf[nxt - 2:nxt]) != _crc16(bytes(buf[off:nxt - 2])):
        return None
    if tag == TAG_ENERGY:
        return (tag, buf[off + 1], nxt) if buf[off + 1] else None
    if tag == TAG_CLOCK:
        return tag, struct.unpack("<I", bytes(buf[off + 1:off + 5]))[0], nxt
    amount = struct.unpack("<I", bytes(buf[off + 1:off + 5]))[0]
    ref = bytes(buf[off + 5:off + 13])
    split = (0, 0) if tag == TAG_TOPUP_V1 else struct.unpack("<II", bytes(buf[off + 13:off + 21]))
    return TAG_TOPUP, (amount, ref, split[0], split[1]), nxt
