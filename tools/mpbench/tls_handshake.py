# TLS handshake of the meter's MQTT link (firmware/mqttlink.py over
# firmware/tls.py) to a broker, as the sync does it: non-blocking, a step per
# turn. Prints JSON: ms from TCP connect to CONNACK, the turns it took, the
# most GC heap in use at any turn, and the process's peak resident size.
# argv: CA file (DER) or - for plain MQTT (the comparison), port, host name
import gc
import json
import socket
import sys
import time

from firmware import tls
from firmware.mqttlink import Link

ca_path, port, host = sys.argv[1], int(sys.argv[2]), sys.argv[3]
gc.collect()
base = gc.mem_alloc()
t0 = time.ticks_ms()
if ca_path == "-":
    link = Link(socket)
else:
    with open(ca_path, "rb") as f:
        link = tls.TlsLink(socket, (tls.context(ca_path, tls.pin(f.read())), host))
link.connect(socket.getaddrinfo("127.0.0.1", port)[0][-1])
link.write(b"\x10\x10\x00\x04MQTT\x04\x02\x00\x1e\x00\x04tlsb")   # CONNECT
peak, turns = 0, 0
while len(link.inp) < 4:
    link.pump()
    turns += 1
    peak = max(peak, gc.mem_alloc() - base)
    if time.ticks_diff(time.ticks_ms(), t0) > 20000:
        raise SystemExit("no CONNACK")
    time.sleep_ms(1)
ms = time.ticks_diff(time.ticks_ms(), t0)
assert bytes(link.inp[:4]) == b"\x20\x02\x00\x00", link.inp
link.close()
# mbedtls takes its memory from the C heap on the unix port (only the bare-
# metal config routes it to the GC heap): the process's peak resident size
# shows it, compared with a plain run
rss = 0
with open("/proc/self/status") as f:
    for line in f:
        if line.startswith("VmHWM:"):
            rss = int(line.split()[1])
print(json.dumps({"ms": ms, "turns": turns, "peak_heap": peak, "peak_rss_kib": rss}))
