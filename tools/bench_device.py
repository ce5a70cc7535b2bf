#!/usr/bin/env python3
"""The device path's figures on the 32-bit v1.28 interpreter (the lane of
tests/device.py): which heap sizes run a meter with MQTT connected and its
console in use, with the firmware loaded as .mpy from the filesystem as
tools/deploy.py leaves it; and, through a TCP proxy that delays each way,
connections and messages per minute at 100-800 ms round-trip times."""

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import mp  # noqa: E402
from build_mpy import build  # noqa: E402

RUN_S = 20
PULSES_PER_S = 2400     # a 30 kWh/day meter's 48,000 pulses in 20 s


def _meter(tmp, broker, code, heap="1024k", **world):
    from device import Device
    from test_mqtt import provision
    reg, sec = provision(broker.addr, Path(tmp), pin="2468")
    dev = Device(Path(tmp) / "dev", heap=heap, code=code, umqtt=str(code.parent / "frozen"),
                 fakes=str(code.parent / "fakes"), **world)
    dev.provision(dict(json.loads(sec.read_text()), **world.pop("secrets", {})),
                  broker.addr)
    dev.run("from firmware.settings import Settings\nimport boards.esp32_devkit_bl0937 as B\n"
            "Settings(B.settings_flash(), {}).save({'telemetry_s': 5})\n")
    return dev


def _connected(dev, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        if "mqtt=connected" in dev.cmd("status"):
            return True
        time.sleep(0.5)
    return False


def heap_run(kib, broker, code, tmp):
    """None if the meter ran RUN_S seconds in kib KiB, else why not."""
    dev = _meter(tmp, broker, code, heap="%dk" % kib, pulses_per_s=PULSES_PER_S)
    try:
        dev.boot()
        if not _connected(dev):
            return "no MQTT connection"
        end = time.time() + RUN_S
        while time.time() < end:
            for line in ("login 2468", "log 5", "config", "logout", "status"):
                if dev.cmd(line)[-1] not in ("ok",):
                    return "console: %s failed" % line
            time.sleep(1)
        if not dev.alive():
            return "died: " + dev.stderr_tail()[-200:]
        return None
    except AssertionError as e:
        text = str(e)
        return "MemoryError" if "MemoryError" in text else text.splitlines()[0][:120]
    finally:
        dev.stop()


def staged(out):
    """The firmware as deploy leaves it on a board: .mpy files, main.py; and
    umqtt.simple 1.7.0 compiled, standing in for the frozen copy (frozen
    bytecode costs a board no heap at all: this is the pessimistic side)."""
    import subprocess
    from device import FAKES, UMQTT
    build(out)
    shutil.copy(mp.ROOT / "main.py", Path(out) / "main.py")
    lib = Path(out).parent / "frozen" / "umqtt"
    lib.mkdir(parents=True)
    (lib / "__init__.py").write_text("")
    subprocess.run([mp.mpy_cross(), "-o", str(lib / "simple.mpy"),
                    str(UMQTT["1.7.0"] / "umqtt" / "simple.py")], check=True)
    # the stand-ins for the port's C modules, compiled: their bytecode is heap
    # a board does not spend, so it is subtracted in the figures' sense
    fakes = Path(out).parent / "fakes"
    fakes.mkdir()
    for f in FAKES.glob("*.py"):
        subprocess.run([mp.mpy_cross(), "-o", str(fakes / (f.stem + ".mpy")), str(f)],
                       check=True)
    return Path(out)


def run(sizes=(96, 112, 128, 144, 160)):
    from conftest import Broker
    from device import MP32
    if not MP32.exists():
        print("device bench skipped: no %s" % MP32)
        return None
    res = {"heap": {}}
    with tempfile.TemporaryDirectory() as tmp:
        code = staged(Path(tmp) / "fs")
        b = Broker(Path(tmp)).start()
        try:
            for kib in sizes:
                why = heap_run(kib, b, code, Path(tmp) / ("heap%d" % kib))
                res["heap"][kib] = why or "ok"
                print("device path in %d KiB: %s" % (kib, why or "ok"))
        finally:
            b.stop()
    out = mp.ROOT / "build" / "bench-device.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    run()
