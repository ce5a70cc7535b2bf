"""Give a board running a stock MicroPython image the meter's partition table
(tools/deploy.py --install): the raw `meter` partition the ledger needs, taken
from the start of the filesystem, which moves up.

With esptool, in this order (a power cut between two steps leaves a board that
the same command finishes):
1. read the table at 0x8000. One with our `meter` partition already is left
   alone, and so is the ledger in it; a different `meter` partition is refused
   (moving it would lose the ledger) unless wipe is asked for;
2. erase the new `meter` partition (old filesystem bytes are not a ledger) and
   the first two blocks of the new `vfs`: MicroPython's _boot.py formats a `vfs`
   that does not mount only when its first block is erased, and otherwise
   prints "The filesystem appears to be corrupted" forever (inisetup.py);
3. write the table (it is the last step: until it is there the board still
   boots the stock layout);
4. the board resets, formats the filesystem on that boot; then `check()` asks
   it over its REPL which partitions it now sees."""

import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import partitions

TABLE_AT = 0x8000
SECTOR = 0x1000
VFS_BLOCKS_ERASED = 2       # littlefs keeps its superblock pair in blocks 0 and 1


def esptool_cmd(spec):
    """The esptool command line: a command given by the user, or this
    Python's esptool (requirements.txt installs it)."""
    return spec.split() if spec else [sys.executable, "-m", "esptool"]


def read_table(data):
    """{name: (type, subtype, offset, size)} of a binary partition table."""
    rows = {}
    for at in range(0, len(data) - 31, 32):
        magic, t, s, off, size, name, _ = struct.unpack_from("<2sBBII16sI", data, at)
        if magic != b"\xaa\x50":
            break
        rows[name.rstrip(b"\0").decode("ascii", "replace")] = (t, s, off, size)
    return rows


def erase_plan(rows):
    """(offset, size) regions to erase before the table goes in: the whole
    `meter` partition and the head of `vfs`, merged where they touch."""
    regions = []
    for name, _, _, off, size, _ in rows:
        if name == "meter":
            regions.append((off, size))
        elif name == "vfs":
            regions.append((off, VFS_BLOCKS_ERASED * SECTOR))
    regions.sort()
    merged = []
    for off, size in regions:
        if merged and merged[-1][0] + merged[-1][1] == off:
            merged[-1] = (merged[-1][0], merged[-1][1] + size)
        else:
            merged.append((off, size))
    return merged


def table_rows(csv=None):
    return partitions.parse_csv(Path(csv or partitions.ROOT / "boards" / "partitions.csv")
                                .read_text())


def read_step(dest):
    return ["read-flash", hex(TABLE_AT), hex(partitions.TABLE_LEN), str(dest)]


def write_steps(rows, table_file):
    """Steps 2 and 3 as esptool argument lists."""
    return [["erase-region", hex(off), hex(size)] for off, size in erase_plan(rows)] + \
        [["write-flash", hex(TABLE_AT), str(table_file)]]


def install(port, chip, esptool="", wipe=False, csv=None, log=print):
    """Steps 1-3; returns False when the board already had the table."""
    rows = table_rows(csv)
    table = partitions.to_binary(rows)
    base = esptool_cmd(esptool) + ["--chip", chip, "--port", port]

    def run(args):
        r = subprocess.run(base + args, capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise SystemExit("esptool %s failed:\n%s%s" % (args[0], r.stdout, r.stderr))
        log("esptool " + " ".join(args[:3]))

    with tempfile.TemporaryDirectory() as tmp:
        old_bin = Path(tmp) / "old-table.bin"
        run(read_step(old_bin))
        old = read_table(old_bin.read_bytes())
        if old == read_table(table):
            log("partition table: already the meter's (the ledger in it is kept)")
            return False
        if "meter" in old and not wipe:
            raise SystemExit(
                "the board has a different `meter` partition %r: it holds a ledger that this "
                "table would move and lose; read its credit first, then add --wipe-ledger "
                "to start the meter over" % (old["meter"],))
        new_bin = Path(tmp) / "partition-table.bin"
        new_bin.write_bytes(table)
        for step in write_steps(rows, new_bin):
            run(step)
        log("partition table written at 0x%x: %s" % (
            TABLE_AT, ", ".join("%s %d KiB" % (r[0], r[4] // 1024) for r in rows)))
    return True


# Run on the board after the reset: what it sees decides whether deploy goes on.
CHECK = """import esp32, os
def size(label):
    p = esp32.Partition.find(esp32.Partition.TYPE_DATA, label=label)
    return p[0].info()[3] if p else 0
s = os.statvfs('/')
print('layout', size('meter'), size('vfs'), s[0] * s[2])
"""


def check(remote, attempts=10, wait_s=1.0, log=print):
    """Wait for the board's first boot on the new table (it formats the
    filesystem), then check it sees the `meter` partition; `remote(code)`
    runs code on the board and returns what it printed."""
    rows = {r[0]: r for r in table_rows()}
    for n in range(attempts):
        try:
            out = remote(CHECK)
            break
        except SystemExit:
            if n == attempts - 1:
                raise
            time.sleep(wait_s)
    words = [w for w in out.split("\n") if w.startswith("layout ")]
    if not words:
        raise SystemExit("the board did not report its partitions:\n" + out)
    meter, vfs, fs_bytes = (int(x) for x in words[0].split()[1:])
    if not meter:
        raise SystemExit("the board has no `meter` partition (a stock partition table): "
                         "deploy with --install")
    if meter != rows["meter"][4]:
        raise SystemExit("the board's `meter` partition is %d bytes, boards/partitions.csv "
                         "says %d" % (meter, rows["meter"][4]))
    log("board sees: meter %d KiB, vfs %d KiB (filesystem %d KiB)"
        % (meter // 1024, vfs // 1024, fs_bytes // 1024))
