# Settings that survive power cuts: one JSON object in a firmware.journal on its
# own small partition. Every save writes the whole object as one record, so a
# cut leaves either the old settings or the new, never a mix. Keys that were
# never saved read as their defaults.
#
# record 0xDE: u8 tag, u16 len, JSON, u32 CRC-32; the ring programs the tag
# last, as its commit mark (firmware/ring.py). Earlier releases wrote the same
# layout tag first with tag 'C' 0x43: still read.

import io
import json
import struct
from binascii import crc32

from firmware.journal import Journal, intact

MAGIC = b"PPCF"
TAG = 0xDE
TAG_C = 0x43          # 'C'
MAX_BLOB = 1024
MAX_RECORD = 3 + MAX_BLOB + 4


class _Into(io.IOBase):
    """json.dump's stream: the JSON goes straight into the record buffer,
    after the header (a record is most of a KiB; a copy of it is a block a
    fragmented heap may not have in one piece)."""

    def __init__(self, buf):
        self.buf, self.n = buf, 3

    def write(self, b):
        end = self.n + len(b)
        if end > 3 + MAX_BLOB:
            raise ValueError("settings too large (at most %d bytes)" % MAX_BLOB)
        self.buf[self.n:end] = b
        self.n = end
        return len(b)


def encode(values, buf=None):
    """The record, in buf (MAX_RECORD bytes, reused by each save) or a new one."""
    buf = bytearray(MAX_RECORD) if buf is None else buf
    w = _Into(buf)
    json.dump(values, w)
    n = w.n - 3
    struct.pack_into("<BH", buf, 0, TAG, n)
    struct.pack_into("<I", buf, 3 + n, crc32(memoryview(buf)[:3 + n]))
    return memoryview(buf)[:3 + n + 4]


def parse(buf, off):
    if off + 3 > len(buf) or buf[off] not in (TAG, TAG_C):
        return None
    n = struct.unpack_from("<H", buf, off + 1)[0]
    nxt = off + 3 + n + 4
    if n > MAX_BLOB or not intact(buf, off, nxt - off):
        return None
    try:
        v = json.loads(bytes(buf[off + 3:off + 3 + n]))
    except ValueError:
        return None
    return (TAG, v, nxt) if isinstance(v, dict) else None


class Settings:
    def __init__(self, bdev, defaults):
        self.defaults = defaults
        self.stored = {}
        self._rec = bytearray(MAX_RECORD)    # each save's record, taken at boot
        self.journal = Journal(bdev, MAGIC, "settings", MAX_RECORD, parse)
        self.journal.boot(self._load)

    def _load(self, tag, v, first):
        self.stored = v
        return True

    def get(self, key):
        return self.stored.get(key, self.defaults.get(key))

    def items(self):
        d = dict(self.defaults)
        d.update(self.stored)
        return d

    def save(self, changes, replace=False):
        """Persist changes (key -> value; None removes a key) as one record.
        With replace, everything not in changes returns to its default."""
        new = {} if replace else dict(self.stored)
        for k in changes:
            if changes[k] is None:
                new.pop(k, None)
            else:
                new[k] = changes[k]
        self.journal.put(encode(new, self._rec))
        self.stored = new
