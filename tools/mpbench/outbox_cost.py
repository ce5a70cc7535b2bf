# MicroPython: flash written per event queued while offline, and per message
# delivered (the cursor), for the MQTT outbox design. Prints JSON.
import json

from firmware.eventlog import EventLog
from firmware.outbox import Outbox
from hal.sim.flash import SimFlash

N = 300
log_flash = SimFlash(None, 4096, 4)
ob_flash = SimFlash(None, 4096, 4)
log = EventLog(log_flash)
ob = Outbox(ob_flash)
w0 = log_flash.bytes_written + ob_flash.bytes_written
for i in range(N):
    log.append("topup", 1000 + i, 100, "REF-%d" % i)
queued = log_flash.bytes_written + ob_flash.bytes_written - w0
w1 = ob_flash.bytes_written
for seq in range(1, N + 1):
    ob.save_cursor(seq, 0)          # what delivery writes per acknowledged event
delivered = ob_flash.bytes_written - w1
t0 = ob_flash.bytes_written
for i in range(N):
    ob.add_telemetry(1000 + i, 5000, 100 * i, 1000, True, "ok")
tele = ob_flash.bytes_written - t0
print(json.dumps({"per_queued_event": queued / N, "per_delivered": delivered / N,
                  "per_telemetry": tele / N}))
