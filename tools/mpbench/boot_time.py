# MicroPython: boot time of the ledger, fresh and after years of history.
# argv: years kwh_per_day. Prints JSON with microseconds per boot and bytes read.
import json
import sys
import time

from firmware.ledger import Ledger
from firmware.outbox import Outbox
from hal.sim.flash import SimFlash


def boot_cost(f, rounds=30, store=Ledger):
    f.bytes_read = 0
    t = time.ticks_us()
    for _ in range(rounds):
        store(f)
    return time.ticks_diff(time.ticks_us(), t) // rounds, f.bytes_read // rounds


years, kwh_day = int(sys.argv[1]), int(sys.argv[2])
f = SimFlash(None, 4096, 16)
lg = Ledger(f, 1600, 2000, 10 ** 12)
fresh_us, fresh_bytes = boot_cost(f)
# History: years of energy at kwh_day, with a top-up every 30 days. Pulses are
# written in records of 255 (a loss bound raised for the purpose) so that ten
# years take seconds; the ring still wraps thousands of times.
lg.set_loss_bound(10 ** 9)
pulses_day = kwh_day * 1600
for day in range(years * 365):
    left = pulses_day
    while left:
        n = 255 if left > 255 else left
        lg.consume(n)
        left -= n
    if day % 30 == 0:
        lg.topup("bench-%d" % day, 100000)
lg.flush()
old_us, old_bytes = boot_cost(f)
# Boot replays the current sector, so its cost depends on how full that sector
# is, not on age: the fair comparison for the old meter is a new one whose
# current sector is as full (same records, 255 pulses each).
h = SimFlash(None, 4096, 16)
lg3 = Ledger(h, 1600, 2000, 10 ** 12)
lg3.set_loss_bound(10 ** 9)
while lg3.journal.tail < lg.journal.tail:
    lg3.consume(255)
young_us, young_bytes = boot_cost(h)
# The worst case is not age but a full current sector: ~1000 one-pulse records
# to replay just before the next rotation.
g = SimFlash(None, 4096, 16)
lg2 = Ledger(g, 1600, 2000, 10 ** 12)
while lg2.journal.tail + 8 < lg2.journal.bs:
    lg2.consume(1)
full_us, full_bytes = boot_cost(g)
# The MQTT outbox (4 x 4 KiB), new and after years of telemetry (its ring
# wrapped many times), cursor saves between.
o = SimFlash(None, 4096, 4)
ob = Outbox(o)
ob.add_telemetry(1, 1000, 1, 0, True, "ok")
ob_fresh = boot_cost(o, store=Outbox)
for i in range(2, 5000):
    ob.add_telemetry(i, 1000, i, 0, True, "ok")
    if i % 7 == 0:
        ob.save_cursor(i // 2, i - 3)
ob_old = boot_cost(o, store=Outbox)
print(json.dumps({"outbox_fresh_us": ob_fresh[0], "outbox_fresh_bytes": ob_fresh[1],
                  "outbox_old_us": ob_old[0], "outbox_old_bytes": ob_old[1],
                  "fresh_us": fresh_us, "fresh_bytes": fresh_bytes, "old_us": old_us,
                  "old_bytes": old_bytes, "pulses": lg.pulses, "rotations": sum(f.erases),
                  "full_us": full_us, "full_bytes": full_bytes, "young_us": young_us,
                  "young_bytes": young_bytes, "tail": lg.journal.tail}))
