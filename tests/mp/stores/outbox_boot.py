# Run by tests/test_stores.py::test_outbox_boot_reads_only_the_newest_sectors

import json
from hal.sim.flash import SimFlash
from firmware.outbox import Outbox


def reboot(f):
    f.bytes_read = 0
    ob = Outbox(f)
    return [ob.acked_event, ob.acked_tele, ob.tseq, f.bytes_read]


out = {}
# a new outbox, then one whose ring has wrapped many times over years of telemetry
f = SimFlash(None, 4096, 4)
ob = Outbox(f)
ob.add_telemetry(1, 1000, 1, 0, True, "ok")
out["new"] = reboot(f)
for i in range(2, 3000):
    ob.add_telemetry(i, 1000, i, 0, True, "ok")
    if i % 7 == 0:
        ob.save_cursor(i // 2, i - 3)
out["old"] = reboot(f)
out["old_want"] = [ob.acked_event, ob.acked_tele, ob.tseq]
# the newest sector holds only cursors (acks came in a burst, no snapshot since)
g = SimFlash(None, 4096, 4)
ob = Outbox(g)
for i in range(1, 40):
    ob.add_telemetry(i, 1000, i, 0, True, "ok")
k, first = 0, ob.journal.cur
while ob.journal.cur == first or ob.journal.tail < 200:
    k += 1
    ob.save_cursor(k, 30)
out["cursors"] = reboot(g)
out["cursors_want"] = [ob.acked_event, ob.acked_tele, ob.tseq]
# every snapshot acknowledged and then overwritten: seqs go on above the acked
h = SimFlash(None, 4096, 4)
ob = Outbox(h)
ob.save_cursor(5, 77)
out["acked_only"] = reboot(h)
print(json.dumps(out))
