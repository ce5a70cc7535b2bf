"""A stand-in for esptool (no ESP32 ROM loader runs here) that works on a
whole-chip image file ($FAKE_ESPTOOL_CHIP), as the flash behaves: erase-region
takes 4 KiB-aligned regions only (esptool refuses others), write-flash erases
the sectors it covers, then writes. Each command goes to $FAKE_ESPTOOL_LOG.
The real esptool's parser checks the same command lines (tests/test_install.py)."""

import os
import sys

SECTOR = 0x1000


def main(argv):
    opts = {}
    while argv and argv[0].startswith("--"):
        opts[argv[0]] = argv[1]
        argv = argv[2:]
    cmd, args = argv[0], argv[1:]
    with open(os.environ["FAKE_ESPTOOL_LOG"], "a") as log:
        log.write(" ".join([opts.get("--chip", "?"), cmd] + args) + "\n")
    with open(os.environ["FAKE_ESPTOOL_CHIP"], "r+b") as chip:
        if cmd == "read-flash":
            chip.seek(int(args[0], 0))
            data = chip.read(int(args[1], 0))
            with open(args[2], "wb") as f:
                f.write(data)
        elif cmd == "erase-region":
            at, size = int(args[0], 0), int(args[1], 0)
            if at % SECTOR or size % SECTOR:
                print("A fatal error occurred: offset and size must be multiples of 4096")
                return 2
            chip.seek(at)
            chip.write(b"\xff" * size)
        elif cmd == "write-flash":
            at = int(args[0], 0)
            with open(args[1], "rb") as f:
                data = f.read()
            end = -(-(at + len(data)) // SECTOR) * SECTOR
            chip.seek(at - at % SECTOR)
            chip.write(b"\xff" * (end - at + at % SECTOR))
            chip.seek(at)
            chip.write(data)
        else:
            print("No such command %r" % cmd)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
