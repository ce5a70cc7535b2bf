# Run by tests/test_stores.py

import gc
import json
from hal.sim.flash import SimFlash
from firmware.eventlog import EventLog
from firmware.outbox import Outbox

def cost(f):
    gc.collect()
    gc.disable()
    a = gc.mem_alloc()
    got = f()
    b = gc.mem_alloc()
    gc.enable()
    return b - a, got

out = {}
for queued in (60, 600):
    log = EventLog(SimFlash(None, 4096, 4))
    ob = Outbox(SimFlash(None, 4096, 4))
    for i in range(queued):
        log.append("login", i, 0, "technician")
        ob.add_telemetry(i, 1000, i, 0, True, "ok")
    e, evs = cost(lambda: log.after(0, 8))
    t, tel = cost(lambda: ob.telemetry_after(0, 8))
    m, mid = cost(lambda: log.after(log.seq - 20, 8))
    out[queued] = [e, t, m, [x[0] for x in evs], [x[0] for x in tel], [x[0] for x in mid]]
print(json.dumps(out))
