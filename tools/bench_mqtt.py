"""MQTT figures for `make bench`: top-up round trip through a real Mosquitto,
telemetry a meter can send per second, outbox flash per event."""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mp  # noqa: E402

sys.path.insert(0, str(mp.ROOT / "tests"))
from conftest import Broker  # noqa: E402

sys.path.insert(0, str(mp.ROOT))
from firmware.signing import canonical, hmac_sha256  # noqa: E402
from meterctl import nodelay  # noqa: E402

SIM = [sys.executable, str(mp.ROOT / "tools" / "sim.py")]


def _secrets(d, mid):
    key = os.urandom(32).hex()
    p = Path(d) / ("%s.json" % mid)
    p.write_text(json.dumps({"meter_id": mid, "key": key}))
    return p, key


def topup_latency(broker, d, n=100):
    sec, key = _secrets(d, "lat")
    p = subprocess.Popen(SIM + ["--broker", broker.addr, "--secrets", str(sec), "--hours", "1",
                                "--speed", "1", "--credit", "1000", "--json"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    got = {}
    ev = threading.Event()

    def on_message(c, u, m):
        r = json.loads(m.payload)
        got[r["ctr"]] = time.perf_counter()
        ev.set()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-headend")
    c.on_message = on_message
    c.connect("127.0.0.1", broker.port)
    nodelay(c)
    c.subscribe("meters/lat/reply", qos=1)
    c.loop_start()
    times = []
    try:
        time.sleep(2)
        for i in range(1, n + 1):
            args = ["1", "B-%d" % i]
            msg = {"ctr": i, "exp": 0, "cmd": "topup", "args": args,
                   "sig": hmac_sha256(bytes.fromhex(key),
                                      canonical("lat", i, 0, "topup", args)).hex()}
            ev.clear()
            t = time.perf_counter()
            c.publish("meters/lat/cmd", json.dumps(msg), qos=1)
            if not ev.wait(5) or i not in got:
                continue
            times.append((got[i] - t) * 1000)
    finally:
        c.loop_stop()
        c.disconnect()
        p.terminate()
        p.wait()
    times.sort()
    return {"n": len(times), "median_ms": statistics.median(times),
            "p99_ms": times[min(len(times) - 1, int(len(times) * 0.99))]}


def telemetry_rate(broker, d):
    """Queue telemetry offline, then time how fast the meter drains it."""
    sec, _ = _secrets(d, "rate")
    img = Path(d) / "rate.img"
    subprocess.run(SIM + ["--broker", "127.0.0.1:9", "--secrets", str(sec), "--flash", str(img),
                          "--hours", "1", "--speed", "300", "--set", "telemetry_s=10",
                          "--json"], check=True, capture_output=True)
    count = {"n": 0, "first": None, "last": None}

    def on_message(c, u, m):
        now = time.perf_counter()
        count["n"] += 1
        count["first"] = count["first"] or now
        count["last"] = now
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-rate")
    c.on_message = on_message
    c.connect("127.0.0.1", broker.port)
    c.subscribe("meters/rate/telemetry", qos=1)
    c.loop_start()
    time.sleep(0.5)
    subprocess.run(SIM + ["--broker", broker.addr, "--flash", str(img), "--hours", "0.003",
                          "--speed", "1", "--set", "telemetry_s=3600", "--json"],
                   check=True, capture_output=True)
    time.sleep(0.5)
    c.loop_stop()
    c.disconnect()
    span = (count["last"] - count["first"]) if count["n"] > 1 else 0
    return {"messages": count["n"], "per_s": count["n"] / span if span else 0}


def run():
    with tempfile.TemporaryDirectory() as d:
        b = Broker(d).start()
        try:
            lat = topup_latency(b, d)
            rate = telemetry_rate(b, d)
        finally:
            b.stop()
    r = subprocess.run(mp.argv(mp.ROOT / "tools" / "mpbench" / "outbox_cost.py"), env=mp.env(),
                       capture_output=True, text=True, check=True)
    return lat, rate, json.loads(r.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    print(run())
