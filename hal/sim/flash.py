# Simulated NOR flash behind the MicroPython block-device protocol.
#
# Semantics follow a SPI NOR chip as the ESP32 sees it through esp32.Partition:
# erase (ioctl 6) sets a block to 0xFF, a write can only clear bits, and asking a
# write to turn a 0 bit back into 1 is an error. A power cut can be injected on
# the Nth write (optionally also on erases): the write is torn at a random byte,
# that byte is half-programmed, and PowerCut is raised so the caller stops dead.

from hal.sim.rng import Rng


_ERASED = b"\xff" * 256


class PowerCut(Exception):
    pass


class NorError(OSError):
    pass


class SimFlash:
    """path=None keeps the flash in a bytearray (`data`); with a path it lives
    only in the image file, so it costs the interpreter's heap nothing, as
    real flash costs the ESP32's heap nothing."""

    def __init__(self, path=None, block_size=4096, blocks=16, seed=0,
                 cut_after_writes=0, cut_erases=False, grow_from=()):
        self.block_size = block_size
        self.blocks = blocks
        self.size = block_size * blocks
        self.path = path
        self._file = None
        self.data = None
        if path is None:
            # erased, filled in place: bytes of the image's size first would
            # need twice its RAM at once
            self.data = bytearray(self.size)
            for off in range(0, self.size, len(_ERASED)):
                self.data[off:off + len(_ERASED)] = _ERASED[:self.size - off]
        else:
            self._open_image(path, grow_from)
        self.erases = [0] * blocks
        self.writes = 0          # write operations
        self.bytes_written = 0   # bytes programmed
        self.reads = 0
        self.bytes_read = 0
        self.cut_after_writes = cut_after_writes
        self.cut_erases = cut_erases
        self._ops = 0
        self._rng = Rng(seed)
        self.cut = False

    def _open_image(self, path, grow_from):
        """Open or create the image. An image of a size in grow_from (an older
        layout, before partitions were added after it) reads as if the rest
        were erased flash; the file grows only when that part is written."""
        try:
            f = open(path, "r+b")
        except OSError:
            f = open(path, "w+b")
        f.seek(0, 2)
        n = f.tell()
        if n == 0:  # a new image is erased flash
            for _ in range(self.size // len(_ERASED)):
                f.write(_ERASED)
            n = self.size
        # an older layout, possibly grown part of the way by earlier writes
        growing = grow_from and min(grow_from) <= n < self.size
        if n != self.size and not growing:
            f.close()
            raise ValueError("flash image %s is %d bytes, board expects %d"
                             % (path, n, self.size))
        self._file = f
        self._file_len = n

    def close(self):
        if self._file:
            self._file.close()
            self._file = None

    def _rand(self, n):
        return self._rng.below(n)

    def _get(self, start, n):
        if self.data is not None:
            return self.data[start:start + n]
        b = bytearray(b"\xff" * n)
        self._read_into(start, b)
        return b

    def _read_into(self, start, buf):
        """Read the image; what lies past the end of the file is erased."""
        n = 0
        if start < self._file_len:
            self._file.seek(start)
            n = self._file.readinto(buf) or 0
        for i in range(n, len(buf)):
            buf[i] = 0xFF

    def _put(self, start, b):
        if self.data is not None:
            self.data[start:start + len(b)] = b
            return
        f = self._file
        if start > self._file_len:
            f.seek(self._file_len)
            while self._file_len < start:
                k = start - self._file_len
                f.write(_ERASED[:k] if k < len(_ERASED) else _ERASED)
                self._file_len += k if k < len(_ERASED) else len(_ERASED)
        f.seek(start)
        f.write(b)
        if start + len(b) > self._file_len:
            self._file_len = start + len(b)

    def _count_op(self):
        self._ops += 1
        return self.cut_after_writes and self._ops == self.cut_after_writes

    # -- block-device protocol -------------------------------------------------

    def readblocks(self, block, buf, offset=0):
        start = block * self.block_size + offset
        if block < 0 or start + len(buf) > self.size:
            raise NorError(22, "read past end of flash")
        if self.data is not None:
            buf[:] = self.data[start:start + len(buf)]
        else:
            self._read_into(start, buf)
        self.reads += 1
        self.bytes_read += len(buf)

    def writeblocks(self, block, buf, offset=None):
        if offset is None:
            # Like esp32.Partition: the plain form erases the blocks first.
            for b in range((len(buf) + self.block_size - 1) // self.block_size):
                self.ioctl(6, block + b)
            offset = 0
        start = block * self.block_size + offset
        n = len(buf)
        if block < 0 or start + n > self.size:
            raise NorError(22, "write past end of flash")
        d = self.data
        if d is not None and not self.cut_after_writes:
            # the common case, in place (a journal writes a few bytes at a time)
            for i in range(n):
                b = buf[i]
                if b & ~d[start + i] & 0xFF:
                    raise NorError(5, "NOR write would set a 0 bit to 1 at byte %d"
                                   % (start + i))
            for i in range(n):
                d[start + i] &= buf[i]
            self.writes += 1
            self.bytes_written += n
            return
        old = self._get(start, n)
        for i in range(n):
            if buf[i] & ~old[i] & 0xFF:
                raise NorError(5, "NOR write would set a 0 bit to 1 at byte %d"
                               % (start + i))
        self.writes += 1
        cut = self._count_op()
        # A cut tears the write: bytes before k land, byte k is half-programmed,
        # the rest never reach the chip.
        k = self._rand(n) if cut and n else n
        for i in range(k):
            old[i] &= buf[i]
        if k < n:
            old[k] &= buf[k] | self._rand(256)
        self.bytes_written += k
        self._put(start, old)
        if cut:
            self.cut = True
            raise PowerCut("power cut during write %d" % self.writes)

    def ioctl(self, op, arg):
        if op == 4:
            return self.blocks
        if op == 5:
            return self.block_size
        if op == 6:
            if not 0 <= arg < self.blocks:
                raise NorError(22, "erase of block %d outside flash" % arg)
            start = arg * self.block_size
            self.erases[arg] += 1
            if self.cut_erases and self._count_op():
                # An interrupted erase leaves some bytes erased, some not.
                b = self._get(start, self.block_size)
                for i in range(self.block_size):
                    if self._rand(2):
                        b[i] = 0xFF
                self._put(start, b)
                self.cut = True
                raise PowerCut("power cut during erase of block %d" % arg)
            for off in range(0, self.block_size, len(_ERASED)):
                self._put(start + off, _ERASED[:self.block_size - off])
            return 0
        if op in (1, 2, 3):  # init, deinit, sync
            return 0
        return None

    def wear(self):
        return {"erases": list(self.erases), "max_erases": max(self.erases),
                "writes": self.writes, "bytes_written": self.bytes_written}
