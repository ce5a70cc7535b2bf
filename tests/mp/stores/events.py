# Run by tests/test_stores.py

import json
from hal.sim.flash import SimFlash, PowerCut
from firmware.eventlog import EventLog
f = SimFlash(None, 512, 3, seed=2)
log = EventLog(f)
for i in range(100):
    log.append("topup", 1000 + i, i, "ref-%d-\u00e9\x01" % i)
out = {"seq": log.seq, "last3": log.last(3)}
boot = EventLog(f)
out["boot_seq"] = boot.seq
out["boot_last"] = [e[0] for e in boot.last(40)]
f.cut_after_writes = f._ops + 1     # tear the next event
try:
    boot.append("relay", 5, 0, "open:credit")
except PowerCut:
    pass
f.cut_after_writes = 0
again = EventLog(f)
again.append("boot", 6, 42)
out["after_cut"] = again.last(2)
print(json.dumps(out))
