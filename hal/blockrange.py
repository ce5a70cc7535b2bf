# A block device that is a range of blocks of another one: carves the ledger,
# settings and event-log partitions out of one flash (a sim image, or one
# esp32.Partition when a board keeps them together).


class BlockRange:
    def __init__(self, bdev, first, count):
        if first < 0 or count < 1 or first + count > bdev.ioctl(4, 0):
            raise ValueError("block range %d+%d outside the device" % (first, count))
        self.bdev = bdev
        self.first = first
        self.count = count
        self.bs = bdev.ioctl(5, 0)
        self.size = count * self.bs
        # every journal record is two writes through here: bound once
        self._read, self._write = bdev.readblocks, bdev.writeblocks

    def _check(self, block, nbytes, offset):
        if block < 0 or block * self.bs + offset + nbytes > self.size:
            raise OSError(22, "access outside the partition")

    def readblocks(self, block, buf, offset=0):
        self._check(block, len(buf), offset)
        self._read(self.first + block, buf, offset)

    def writeblocks(self, block, buf, offset=None):
        if offset is None:
            self._check(block, len(buf), 0)
            self._write(self.first + block, buf)
        else:
            if block < 0 or block * self.bs + offset + len(buf) > self.size:
                raise OSError(22, "access outside the partition")
            self._write(self.first + block, buf, offset)

    def ioctl(self, op, arg):
        if op == 4:
            return self.count
        if op == 6:
            if not 0 <= arg < self.count:
                raise OSError(22, "erase outside the partition")
            return self.bdev.ioctl(6, self.first + arg)
        return self.bdev.ioctl(op, arg)
