# Run by tests/test_sim_flash.py

import json
import sys
from hal.sim.flash import SimFlash
p = sys.argv[1]
f = SimFlash(p, 512, 2)
f.writeblocks(1, b"abc", 7)
f.close()
g = SimFlash(p, 512, 2)
buf = bytearray(3)
g.readblocks(1, buf, 7)
print(json.dumps({"back": buf.decode()}))
