# Run by tests/test_sim_flash.py

import json
from hal.sim.flash import SimFlash, PowerCut
res = []
for seed in range(40):
    f = SimFlash(None, 512, 2, seed=seed, cut_after_writes=3)
    data = bytes(range(64))
    f.writeblocks(0, data, 0)
    f.writeblocks(0, data, 64)
    try:
        f.writeblocks(0, data, 128)
        res.append(None)
    except PowerCut:
        buf = bytearray(64)
        f.readblocks(0, buf, 128)
        # how many leading bytes landed intact; the rest must be untouched
        k = 0
        while k < 64 and buf[k] == data[k]:
            k += 1
        tail_ok = all(b == 0xFF for b in buf[k + 1:])
        res.append([k, tail_ok])
print(json.dumps(res))
