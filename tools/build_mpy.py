#!/usr/bin/env python3
"""Compile every device module (boards/, firmware/, hal/) with mpy-cross into
build/mpy/, as they are deployed to a board. Prints the files it wrote."""

import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mp  # noqa: E402

DEVICE_DIRS = ("boards", "firmware", "hal")


def device_modules():
    for d in DEVICE_DIRS:
        # boards/manifest.py is a MicroPython build manifest, not a module
        yield from sorted(f for f in (mp.ROOT / d).rglob("*.py") if f.name != "manifest.py")
    yield mp.ROOT / "main.py"   # stays .py on the board; compiled here as a check


def board_modules():
    """What a board runs, frozen or from its filesystem: the firmware, the
    ESP32 HAL and boards (not the simulator's), and main.py."""
    root = mp.ROOT
    out = sorted((root / "firmware").glob("*.py"))
    out += [root / "hal" / "__init__.py", root / "hal" / "blockrange.py"]
    out += sorted((root / "hal" / "esp32").glob("*.py"))
    out += [root / "boards" / "__init__.py"] + sorted((root / "boards").glob("esp32*.py"))
    return out + [root / "main.py"]


# Viper (machine code) modules go as source: the board compiles them for its own
# CPU at import (an .mpy would fix one architecture; freezing compiles them for
# the port's). mpy-cross still checks them with a native architecture.
AS_SOURCE = ("firmware/siphash_native.py",)


# No line-number tables: on a board running .mpy files they are heap (3 KB of
# the firmware's); a traceback still names the file and function, and the
# same code run from source (simulator, tests) has the lines.
LEAN = ("-X", "no-source-lines")


def build(out=None, extra=()):
    out = Path(out or mp.ROOT / "build" / "mpy")
    written = []
    for src in device_modules():
        rel = src.relative_to(mp.ROOT)
        if str(rel) in AS_SOURCE:
            check = subprocess.run([mp.mpy_cross(), "-march=xtensawin", "-o", os.devnull,
                                    str(src)], capture_output=True, text=True)
            if check.returncode != 0:
                raise SystemExit("mpy-cross failed on %s:\n%s" % (rel, check.stderr))
            dst = out / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(src.read_bytes())
            written.append(dst)
            continue
        dst = out / rel.with_suffix(".mpy")
        dst.parent.mkdir(parents=True, exist_ok=True)
        r = subprocess.run([mp.mpy_cross(), *LEAN, *extra, "-s", str(rel), "-o", str(dst),
                            str(src)], capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit("mpy-cross failed on %s:\n%s" % (rel, r.stderr))
        written.append(dst)
    return written


def run_compiled_day(workdir, heap_kib):
    """Run a simulated day at 30 kWh/day with a top-up from the .mpy files in
    workdir (built by build(workdir)) in a heap of heap_kib KiB. Paths are
    relative to workdir, so the result does not depend on where the checkout
    lives: long module paths cost heap too."""
    cfg = {"end_ms": 86400000, "load": 1250, "credit": 10 ** 6, "json": True,
           "flash": "day-%d.img" % heap_kib, "topups": [[3600000, 100, "a"]]}
    img = os.path.join(workdir, cfg["flash"])
    if os.path.exists(img):
        os.remove(img)
    env = dict(os.environ, MICROPYPATH=".frozen:", SIM_CONFIG=json.dumps(cfg))
    return subprocess.run([mp.micropython(), "-X", "heapsize=%dk" % heap_kib, "-m",
                           "hal.sim.run"], cwd=workdir, env=env, capture_output=True,
                          text=True, timeout=600)


if __name__ == "__main__":
    for f in build(*sys.argv[1:2]):
        print(f.relative_to(mp.ROOT))
