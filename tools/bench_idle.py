#!/usr/bin/env python3
"""CPU an idle simulated meter uses in real time (`tools/sim.py --speed 1`, no
load, MQTT connected to a Mosquitto on loopback): N meters, each its own
process, CPU from /proc over a window after they connected."""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def _cpu_s(pid):
    f = open("/proc/%d/stat" % pid).read().split(")")[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def run(n=4, secs=30):
    from conftest import Broker
    from test_mqtt import provision
    with tempfile.TemporaryDirectory() as tmp:
        b = Broker(Path(tmp)).start()
        procs = []
        try:
            for i in range(n):
                d = Path(tmp) / ("m%d" % i)
                d.mkdir()
                _, sec = provision(b.addr, d, name="idle%d" % i)
                procs.append(subprocess.Popen(
                    [sys.executable, str(ROOT / "tools" / "sim.py"), "--broker", b.addr,
                     "--secrets", str(sec), "--speed", "1", "--hours", str((secs + 20) / 3600),
                     "--flash", str(d / "meter.img")],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            time.sleep(8)        # booted and connected
            # tools/sim.py waits for its MicroPython child, which does the work
            kids = [int((subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True,
                                        text=True).stdout.split() or [p.pid])[0])
                    for p in procs]
            c0, t0 = [_cpu_s(k) for k in kids], time.time()
            time.sleep(secs)
            c1, dt = [_cpu_s(k) for k in kids], time.time() - t0
        finally:
            for p in procs:
                p.kill()
            b.stop()
    use = [(y - x) / dt * 100 for x, y in zip(c0, c1)]
    return {"mean_pct": sum(use) / n, "max_pct": max(use), "meters": n, "seconds": secs}


if __name__ == "__main__":
    print(run())
