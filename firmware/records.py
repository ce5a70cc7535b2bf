# On-flash record formats of the ledger journal (all little-endian).
#
# Sectors are a firmware.ring with magic b"PPLG".
# STATE 'S': u8 tag, u16 len, payload, u32 crc32  -- a full checkpoint
# ENERGY 'E': u8 tag, u8 pulses, u16 crc           -- 4 bytes, the hot path
# TOPUP 'T': u8 tag, u32 amount, 8 B ref digest, u16 crc
# crc16 here is the low half of CRC-32 over the bytes before it. Erased flash
# reads 0xFF, so a tag of 0xFF marks the end of the journal; anything else that
# fails its check is a torn or damaged record and ends the replay too.

import struct
from binascii import crc32

MAGIC = b"PPLG"
TAG_STATE = 0x53
TAG_ENERGY = 0x45
TAG_TOPUP = 0x54
ENERGY_LEN = 4
TOPUP_LEN = 15
REF_LEN = 8
STATE_FMT = "<qQqqIIIIB"
STATE_FIXED = struct.calcsize(STATE_FMT)
FRESH_STATE_LEN = 3 + STATE_FIXED + 4  # a new ledger's state: no references yet
MAX_REFS = 32                          # references a checkpoint carries
MAX_RECORD = FRESH_STATE_LEN + MAX_REFS * REF_LEN


def _crc16(b):
    return struct.pack("<H", crc32(b) & 0xFFFF)


def energy(n):
    b = bytes((TAG_ENERGY, n))
    return b + _crc16(b)


def topup(amount, ref):
    b = struct.pack("<BI", TAG_TOPUP, amount) + ref
    return b + _crc16(b)


def state(s):
    """s: (credit, pulses, billed, topups, rem, price, imp, count, refs)."""
    refs = s[8]
    payload = struct.pack(STATE_FMT, s[0], s[1], s[2], s[3], s[4], s[5], s[6],
                          s[7], len(refs)) + b"".join(refs)
    b = struct.pack("<BH", TAG_STATE, len(payload)) + payload
    return b + struct.pack("<I", crc32(b))


def parse(buf, off):
    """(tag, value, next_off) for the record at off, or None at the end of the
    journal (erased space, a torn record, or the end of the sector)."""
    end = len(buf)
    if off >= end:
        return None
    tag = buf[off]
    if tag == TAG_ENERGY:
        nxt = off + ENERGY_LEN
        if nxt > end or bytes(buf[off + 2:nxt]) != _crc16(bytes(buf[off:off + 2])):
            return None
        n = buf[off + 1]
        return (tag, n, nxt) if n else None
    if tag == TAG_TOPUP:
        nxt = off + TOPUP_LEN
        if nxt > end or bytes(buf[nxt - 2:nxt]) != _crc16(bytes(buf[off:nxt - 2])):
            return None
        amount = struct.unpack("<I", bytes(buf[off + 1:off + 5]))[0]
        return tag, (amount, bytes(buf[off + 5:off + 13])), nxt
    if tag == TAG_STATE:
        if off + 3 > end:
            return None
        ln = struct.unpack("<H", bytes(buf[off + 1:off + 3]))[0]
        nxt = off + 3 + ln + 4
        if ln < STATE_FIXED or nxt > end:
            return None
        body = bytes(buf[off:nxt - 4])
        if struct.unpack("<I", bytes(buf[nxt - 4:nxt]))[0] != crc32(body):
            return None
        v = struct.unpack(STATE_FMT, body[3:3 + STATE_FIXED])
        k = v[8]
        if STATE_FIXED + k * REF_LEN != ln:
            return None
        p = 3 + STATE_FIXED
        refs = [body[p + i * REF_LEN:p + (i + 1) * REF_LEN] for i in range(k)]
        return tag, v[:8] + (refs,), nxt
    return None
