# esp32.Partition as ports/esp32/esp32_partition.c has it, over an image file
# that stands for the board's flash: either the `meter` data partition alone
# (world "flash"), or a whole chip (world "chip_image") whose partitions are found,
# as esp_partition_find does, in the table at 0x8000 (magic AA 50 per 32-byte
# entry, then the EB EB entry with the MD5 of those before it; a table whose
# MD5 is wrong is no table: the bootloader would not start the app).
#   readblocks(block, buf[, offset])
#   writeblocks(block, buf)          erases the blocks buf covers, then writes
#                                    (len(buf) a multiple of the 4096-byte sector)
#   writeblocks(block, buf, offset)  programs only: NOR flash can clear bits,
#                                    never set them (esp_partition_write)
#   ioctl(1|2|3) 0, ioctl(4) block count, ioctl(5) 4096, ioctl(6, block) erase
# Every write and erase goes to the file at once: a killed process (a watchdog
# or machine.reset) leaves the flash as a power cut would.

import hashlib
import os
import struct

import _world

BLOCK = 4096
_FF = b"\xff" * 256    # erased bytes; the fake's own heap use stays small
_CHUNK = bytearray(64)


class Partition:
    BOOT, RUNNING = 0, 1
    TYPE_APP, TYPE_DATA = 0, 1

    def __init__(self, label, path, nblocks, base=0, subtype=0x40):
        self.label = label
        self.path = path
        self.nblocks = nblocks
        self.base = base
        self.subtype = subtype
        try:
            size = os.stat(path)[6]
        except OSError:
            size = 0
        if size < nblocks * BLOCK:
            with open(path, "ab") as f:
                for _ in range((nblocks * BLOCK - size) // len(_FF)):
                    f.write(_FF)

    @classmethod
    def find(cls, type=TYPE_APP, subtype=0xFF, label=None, block_size=BLOCK):
        chip = _world.get("chip_image")
        if chip:
            return [cls(name, chip, size // BLOCK, off, s) for t, s, off, size, name
                    in _table(chip) if t == type and subtype in (0xFF, s)
                    and label in (None, name)]
        img = _world.get("flash")
        if type != cls.TYPE_DATA or img is None or label not in (None, "meter"):
            return []
        return [cls("meter", img, _world.get("flash_blocks", 26))]

    def info(self):
        return (self.TYPE_DATA, self.subtype, self.base, self.nblocks * BLOCK, self.label,
                False)

    def _at(self, block, n, offset):
        a = self.base + block * BLOCK + offset
        if block < 0 or a + n > self.base + self.nblocks * BLOCK:
            raise OSError(22)   # EINVAL, as esp_partition_* refuse it
        return a

    def readblocks(self, block, buf, offset=0):
        a = self._at(block, len(buf), offset)
        with open(self.path, "rb") as f:
            f.seek(a)
            f.readinto(buf)

    def _erase(self, a, n):
        with open(self.path, "r+b") as f:
            f.seek(a)
            for _ in range(n // len(_FF)):
                f.write(_FF)

    def _program(self, a, data):
        # NOR: bits only clear. In fixed chunks through one buffer: the port
        # does this in C, so the stand-in must not take heap the board would
        # not (the device lane measures the firmware's heap)
        data = memoryview(data)
        with open(self.path, "r+b") as f:
            for at in range(0, len(data), len(_CHUNK)):
                n = min(len(_CHUNK), len(data) - at)
                cur = memoryview(_CHUNK)[:n]
                f.seek(a + at)
                f.readinto(cur)
                for i in range(n):
                    _CHUNK[i] &= data[at + i]
                f.seek(a + at)
                f.write(cur)

    def writeblocks(self, block, buf, offset=None):
        if offset is None:
            if len(buf) % BLOCK:
                raise OSError(22)
            a = self._at(block, len(buf), 0)
            self._erase(a, len(buf))
            self._program(a, buf)
        else:
            self._program(self._at(block, len(buf), offset), buf)

    def ioctl(self, op, arg):
        if op == 4:
            return self.nblocks
        if op == 5:
            return BLOCK
        if op == 6:
            self._erase(self._at(arg, BLOCK, 0), BLOCK)
            return 0
        return 0


def _table(chip):
    with open(chip, "rb") as f:
        f.seek(0x8000)
        data = f.read(0xC00)
    rows = []
    for at in range(0, len(data), 32):
        magic, t, s, off, size, name, _ = struct.unpack_from("<2sBBII16sI", data, at)
        if magic == b"\xeb\xeb":
            if hasattr(hashlib, "md5") and hashlib.md5(data[:at]).digest() != data[at + 16:at + 32]:
                return []
            return rows
        if magic != b"\xaa\x50":
            return []
        rows.append((t, s, off, size, name.rstrip(b"\0").decode()))
    return []
