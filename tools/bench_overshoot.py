#!/usr/bin/env python3
"""How far past zero credit a meter bills, as a board runs it: the real main.py
-> hal/esp32 -> firmware/ on the 32-bit interpreter (the lane of
tests/device.py), a latching relay whose contacts gate the pulses, a broker
that accepts TCP and never answers and an NTP server that never answers (the
loop's worst network). A small top-up runs out under 3, 10 and 20 kW; the
figure is the pulses billed after credit reached zero (energy delivered before
the relay opened) and the longest loop turn (the watchdog's longest gap)."""

import json
import math
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

IMP, PRICE = 1600, 2000         # the board's meter constant, a new meter's price
RUN_S = 10                      # the top-up lasts about this long


def credit_for(kw):
    """A top-up that lasts RUN_S at kw (at least 20 pulses)."""
    return max(25, kw * PRICE * RUN_S // 3600)


def silent_broker():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)                # the kernel completes handshakes; nobody answers
    return s


def run_one(tmp, kw, broker):
    from device import Device
    dev = Device(Path(tmp) / ("dev%d" % kw), pulses_per_ks=kw * IMP * 1000 // 3600,
                 relay_coils=[26, 27], wifi={"assoc_ms": 0}, ntp={"down": True})
    from test_mqtt import provision
    addr = "127.0.0.1:%d" % broker.getsockname()[1]
    _, sec = provision(addr, Path(tmp) / ("reg%d" % kw), pin="2468")
    dev.provision(json.loads(sec.read_text()), addr)
    try:
        dev.boot()
        dev.cmd("login 2468")
        dev.cmd("set reconnect auto")          # closes on the top-up, no button
        credit = credit_for(kw)
        dev.cmd("topup %d OVERSHOOT-%d" % (credit, kw))
        end = time.time() + 60 + RUN_S * 3
        seen_closed = False
        while time.time() < end:
            st = dict(x.split("=", 1) for x in dev.cmd("status") if "=" in x)
            seen_closed = seen_closed or st.get("relay") == "closed"
            if seen_closed and st.get("relay") == "open":
                break
            time.sleep(0.3)
        time.sleep(1.0)
        st = dict(x.split("=", 1) for x in dev.cmd("status") if "=" in x)
        rep = dev.report()
    finally:
        dev.stop()
    zero = math.ceil(credit * IMP / PRICE)      # the pulse that takes credit to zero
    return {"kw": kw, "pulses": int(st["pulses"]), "past_zero": int(st["pulses"]) - zero,
            "credit": int(st["credit"]), "relay": st["relay"], "mqtt": st.get("mqtt"),
            "mqtt_error": st.get("mqtt_error"), "clock": st.get("clock"),
            "max_turn_ms": rep.get("wdt_max_gap_ms")}


def run(tmp, powers=(3, 10, 20)):
    from device import MP32
    if not MP32.exists():
        print("overshoot: skipped, no 32-bit interpreter at %s (../shared)" % MP32)
        return []
    broker = silent_broker()
    try:
        rows = [run_one(tmp, kw, broker) for kw in powers]
    finally:
        broker.close()
    for r in rows:
        print("overshoot at %(kw)d kW: %(past_zero)d pulse(s) billed past zero credit, "
              "relay %(relay)s, longest loop turn %(max_turn_ms)s ms (mqtt %(mqtt)s: "
              "%(mqtt_error)s; clock %(clock)s)" % r)
    return rows


if __name__ == "__main__":
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        run(d)
