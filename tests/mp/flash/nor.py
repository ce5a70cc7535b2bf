# Run by tests/test_sim_flash.py

import json
from hal.sim.flash import SimFlash, NorError
f = SimFlash(None, 4096, 4, seed=1)
out = {"count": f.ioctl(4, 0), "size": f.ioctl(5, 0)}
buf = bytearray(8)
f.readblocks(1, buf, 100)
out["blank"] = list(buf)
f.writeblocks(1, b"\x0f\xf0", 100)
f.writeblocks(1, b"\x07\xf0", 100)          # clearing more bits is fine
f.readblocks(1, buf, 100)
out["after"] = list(buf[:2])
try:
    f.writeblocks(1, b"\xff\xff", 100)      # 0 -> 1 without erase
    out["set_bit"] = "accepted"
except NorError:
    out["set_bit"] = "error"
f.readblocks(1, buf, 100)
out["unchanged"] = list(buf[:2])
f.ioctl(6, 1)
f.readblocks(1, buf, 100)
out["erased"] = list(buf)
out["erases"] = list(f.erases)
f.writeblocks(2, b"\x00" * 10)              # plain form erases first
out["erases2"] = f.erases
try:
    f.readblocks(4, buf, 0)
    out["oob"] = "accepted"
except OSError:
    out["oob"] = "error"
print(json.dumps(out))
