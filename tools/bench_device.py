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
    dev.registry = reg
    return dev


def _connected(dev, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        if "mqtt=connected" in dev.cmd("status"):
            return True
        time.sleep(0.5)
    return False


def heap_run(kib, broker, code, tmp, report=None, **world):
    """None if the meter ran RUN_S seconds in kib KiB, with a signed top-up
    from the head-end half way and console commands each second, else why
    not; the fakes' report goes into `report`."""
    from test_mqtt import meterctl
    dev = _meter(tmp, broker, code, heap="%dk" % kib, pulses_per_s=PULSES_PER_S, **world)
    try:
        dev.boot()
        if not _connected(dev):
            return "no MQTT connection"
        end = time.time() + RUN_S
        topup_at = time.time() + RUN_S / 2
        while time.time() < end:
            for line in ("login 2468", "log 5", "config", "logout", "status"):
                if dev.cmd(line)[-1] not in ("ok",):
                    return "console: %s failed" % line
            if topup_at and time.time() > topup_at:
                topup_at = None
                r = meterctl(broker.addr, dev.registry, "topup", "m1", 500, "--ref", "H-1")
                if r.returncode != 0:
                    return "top-up not applied: " + (r.stdout + r.stderr)[-120:]
            time.sleep(1)
        if not dev.alive():
            return "died: " + dev.stderr_tail()[-200:]
        st = dev.cmd("status")
        if "topups=500" not in st:
            return "top-up not on the ledger"
        if "mqtt_error=none" not in st:        # a MemoryError in the link shows here
            return [x for x in st if x.startswith("mqtt_error=")][0]
        if report is not None:
            report.update(dev.report())
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


STAND_INS = """import gc
gc.collect()
a = gc.mem_alloc()
import machine, esp32, network, socket, time, _world, umqtt.simple
gc.collect()
print(gc.mem_alloc() - a)
"""


# What main.py imports on an ESP32 board before the meter starts (the modules a
# meter keeps; transient ones come and go), measured after the stand-ins.
BOOT_IMPORTS = """import gc, micropython
import machine, esp32, network, socket, time, _world, umqtt.simple
gc.collect()
a = gc.mem_alloc()
from hal.esp32 import shell, board, pulses, outputs, net
from firmware import outbox, sync
import boards.esp32_devkit_bl0937
gc.collect()
print(gc.mem_alloc() - a)
"""


def _mp32(code, tmp, program):
    import subprocess
    from device import MP32, mp32_env
    world = Path(tmp) / "world.json"
    world.write_text("{}")
    r = subprocess.run([str(MP32), "-c", program], capture_output=True, text=True,
                       cwd=tmp, env=mp32_env(world, str(code.parent / "frozen"), code,
                                             str(code.parent / "fakes")), timeout=60)
    return int(r.stdout.split()[-1])


def boot_module_bytes(code, tmp):
    """Heap the firmware's resident modules take once imported (.mpy)."""
    return _mp32(code, tmp, BOOT_IMPORTS)


def stand_in_bytes(code, tmp):
    """Heap the ESP32 stand-ins and the compiled umqtt.simple take on the
    interpreter: a board has them in its image (C modules, frozen umqtt)."""
    return _mp32(code, tmp, STAND_INS)


def run(lo=64, hi=192, step=8):
    """The smallest heap (KiB, a multiple of step) the device path runs in,
    found by bisection (a size that runs is assumed to mean every larger one
    does), what the stand-ins take of it, and the live heap at 1 MiB."""
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
            def trial(kib):
                why = heap_run(kib, b, code, Path(tmp) / ("heap%d" % kib))
                res["heap"][kib] = why or "ok"
                print("device path in %d KiB: %s" % (kib, why or "ok"))
                return why is None
            while hi - lo > step:
                mid = (lo + hi) // 2 // step * step
                if trial(mid):
                    hi = mid
                else:
                    lo = mid
            if hi not in res["heap"]:
                trial(hi)
            res["min_kib"] = hi if res["heap"][hi] == "ok" else None
            res["stand_ins_kib"] = round(stand_in_bytes(code, tmp) / 1024, 1)
            res["modules_kib"] = round(boot_module_bytes(code, tmp) / 1024, 1)
            seen = {}
            why = heap_run(1024, b, code, Path(tmp) / "live", seen, mem_live_ms=200)
            res["live_kib"] = None if why else round(seen["mem_live"] / 1024, 1)
        finally:
            b.stop()
    print("device path: smallest heap %s KiB, of which the stand-ins %s KiB; live heap %s "
          "KiB; resident modules %s KiB" % (res["min_kib"], res["stand_ins_kib"],
                                            res["live_kib"], res["modules_kib"]))
    out = mp.ROOT / "build" / "bench-device.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    run()
