#!/usr/bin/env python3
"""The partition table a meter's flash needs, as the binary an ESP32 reads at
0x8000, from boards/partitions.csv (written here from ESP-IDF's documented
format; tests/test_partitions.py holds it to ESP-IDF's own generator).

    tools/partitions.py [CSV] [-o build/partition-table.bin]

Each entry is 32 bytes: the magic AA 50, type, subtype, offset and size (u32
little-endian), a 16-byte NUL-padded name, flags (u32); then an MD5 entry (EB
EB, 14 bytes FF, the MD5 of the entries before it); the rest of the 3 KiB
table is FF (erased)."""

import argparse
import hashlib
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TABLE_LEN = 0xC00
TYPES = {"app": 0x00, "data": 0x01}
SUBTYPES = {0x00: {"factory": 0x00, "test": 0x20},
            0x01: {"ota": 0x00, "phy": 0x01, "nvs": 0x02, "coredump": 0x03, "nvs_keys": 0x04,
                   "efuse": 0x05, "undefined": 0x06, "fat": 0x81, "spiffs": 0x82,
                   "littlefs": 0x83}}
FLAGS = {"encrypted": 1, "readonly": 8}


def _num(text, what):
    try:
        return int(text, 0)
    except ValueError:
        raise ValueError("%s %r is not a number" % (what, text))


def parse_csv(text):
    """(name, type, subtype, offset, size, flags) per line of a partition
    CSV with explicit offsets (all ours have them)."""
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        f = [x.strip() for x in line.split(",")]
        f += [""] * (6 - len(f))
        name, ptype, sub, off, size, flags = f[:6]
        if not 0 < len(name.encode()) <= 16:
            raise ValueError("line %d: name must be 1-16 bytes" % n)
        t = TYPES[ptype] if ptype in TYPES else _num(ptype, "type")
        if sub in SUBTYPES.get(t, {}):
            s = SUBTYPES[t][sub]
        elif t == 0 and sub.startswith("ota_"):
            s = 0x10 + _num(sub[4:], "ota slot")
        else:
            s = _num(sub, "subtype")
        fl = 0
        for word in filter(None, flags.split(":")):
            fl |= FLAGS[word]
        rows.append((name, t, s, _num(off, "offset"), _num(size, "size"), fl))
    return rows


def to_binary(rows):
    """The table as the bootloader reads it (3 KiB)."""
    body = b"".join(struct.pack("<2sBBII16sI", b"\xaa\x50", t, s, off, size,
                                name.encode(), fl)
                    for name, t, s, off, size, fl in rows)
    body += b"\xeb\xeb" + b"\xff" * 14 + hashlib.md5(body).digest()
    if len(body) > TABLE_LEN:
        raise ValueError("too many partitions for one table")
    return body + b"\xff" * (TABLE_LEN - len(body))


def main(argv=None):
    p = argparse.ArgumentParser(prog="tools/partitions.py", description=__doc__.splitlines()[0])
    p.add_argument("csv", nargs="?", default=str(ROOT / "boards" / "partitions.csv"))
    p.add_argument("-o", "--out", default=str(ROOT / "build" / "partition-table.bin"))
    a = p.parse_args(argv)
    try:
        data = to_binary(parse_csv(Path(a.csv).read_text()))
    except (OSError, ValueError, KeyError) as e:
        p.error(str(e))
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    print("wrote %s (%d bytes): write it at 0x8000" % (out, len(data)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
