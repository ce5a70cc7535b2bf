# Simulated NOR flash behind the MicroPython block-device protocol.
#
# Semantics follow a SPI NOR chip as the ESP32 sees it through esp32.Partition:
# erase (ioctl 6) sets a block to 0xFF, a write can only clear bits, and asking a
# write to turn a 0 bit back into 1 is an error. A power cut can be injected on
# the Nth write (optionally also on erases): the write is torn at a random byte,
# that byte is half-programmed, and PowerCut is raised so the caller stops dead.

from hal.sim.rng import Rng


class PowerCut(Exception):
    pass


class NorError(OSError):
    pass


class SimFlash:
    def __init__(self, path=None, block_size=4096, blocks=16, seed=0,
                 cut_after_writes=0, cut_erases=False):
        self.block_size = block_size
        self.blocks = blocks
        size = block_size * blocks
        self.path = path
        self._file = None
        if path is None:
            self.data = bytearray(b"\xff" * size)
        else:
            self.data = self._load_or_create(path, size)
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

    def _load_or_create(self, path, size):
        try:
            with open(path, "rb") as f:
                data = bytearray(f.read())
            if len(data) != size:
                raise ValueError("flash image %s is %d bytes, board expects %d"
                                 % (path, len(data), size))
        except OSError:
            data = bytearray(b"\xff" * size)
            with open(path, "wb") as f:
                f.write(data)
        self._file = open(path, "r+b")
        return data

    def close(self):
        if self._file:
            self._file.close()
            self._file = None

    def _rand(self, n):
        return self._rng.below(n)

    def _persist(self, start, end):
        if self._file:
            self._file.seek(start)
            self._file.write(self.data[start:end])

    def _count_op(self):
        self._ops += 1
        return self.cut_after_writes and self._ops == self.cut_after_writes

    # -- block-device protocol -------------------------------------------------

    def readblocks(self, block, buf, offset=0):
        start = block * self.block_size + offset
        if block < 0 or start + len(buf) > len(self.data):
            raise NorError(22, "read past end of flash")
        buf[:] = self.data[start:start + len(buf)]
        self.reads += 1
        self.bytes_read += len(buf)

    def writeblocks(self, block, buf, offset=None):
        if offset is None:
            # Like esp32.Partition: the plain form erases the blocks first.
            for b in range((len(buf) + self.block_size - 1) // self.block_size):
                self.ioctl(6, block + b)
            offset = 0
        start = block * self.block_size + offset
        end = start + len(buf)
        if block < 0 or end > len(self.data):
            raise NorError(22, "write past end of flash")
        d = self.data
        for i in range(len(buf)):
            if buf[i] & ~d[start + i] & 0xFF:
                raise NorError(5, "NOR write would set a 0 bit to 1 at byte %d"
                               % (start + i))
        self.writes += 1
        if self._count_op():
            # Tear: bytes before `k` land, byte `k` is half-programmed, the rest
            # never reach the chip.
            k = self._rand(len(buf)) if len(buf) else 0
            for i in range(k):
                d[start + i] &= buf[i]
            if k < len(buf):
                d[start + k] &= buf[k] | self._rand(256)
            self.bytes_written += k
            self._persist(start, end)
            self.cut = True
            raise PowerCut("power cut during write %d" % self.writes)
        for i in range(len(buf)):
            d[start + i] &= buf[i]
        self.bytes_written += len(buf)
        self._persist(start, end)

    def ioctl(self, op, arg):
        if op == 4:
            return self.blocks
        if op == 5:
            return self.block_size
        if op == 6:
            if not 0 <= arg < self.blocks:
                raise NorError(22, "erase of block %d outside flash" % arg)
            start = arg * self.block_size
            end = start + self.block_size
            self.erases[arg] += 1
            if self.cut_erases and self._count_op():
                # An interrupted erase leaves some bytes erased, some not.
                d = self.data
                for i in range(start, end):
                    if self._rand(2):
                        d[i] = 0xFF
                self._persist(start, end)
                self.cut = True
                raise PowerCut("power cut during erase of block %d" % arg)
            self.data[start:end] = b"\xff" * self.block_size
            self._persist(start, end)
            return 0
        if op in (1, 2, 3):  # init, deinit, sync
            return 0
        return None

    def wear(self):
        return {"erases": list(self.erases), "max_erases": max(self.erases),
                "writes": self.writes, "bytes_written": self.bytes_written}
