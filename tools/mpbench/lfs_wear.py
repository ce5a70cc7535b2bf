# MicroPython: flash cost of the alternative design, a LittleFS file journal.
# argv: records record_size. Appends records to a file on VfsLfs2 mounted on
# the simulated 64 KiB NOR partition, flushing each one (as a per-Wh journal
# must), and prints the flash operations it cost as JSON.
import json
import sys
import vfs

from hal.sim.flash import SimFlash

n, size = int(sys.argv[1]), int(sys.argv[2])
f = SimFlash(None, 4096, 16)
vfs.VfsLfs2.mkfs(f)
fs = vfs.VfsLfs2(f)
vfs.mount(fs, "/lfs")
w0, b0, e0 = f.writes, f.bytes_written, sum(f.erases)
rec = b"\x5a" * size
fh = open("/lfs/journal", "ab")
for i in range(n):
    fh.write(rec)
    fh.flush()
    if i % 200 == 199:            # keep the file bounded, like a checkpoint
        fh.close()
        fh = open("/lfs/journal", "wb")
fh.close()
print(json.dumps({"records": n, "writes": f.writes - w0,
                  "bytes": f.bytes_written - b0, "erases": sum(f.erases) - e0,
                  "max_erases": max(f.erases)}))
