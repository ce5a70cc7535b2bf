"""Device code compiles with the real mpy-cross and runs, compiled, in a
heap the size an ESP32 can spare."""

import json
import subprocess

import pytest

import mp
from build_mpy import AS_SOURCE, board_modules, build, device_modules, run_compiled_day

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


def manifest_files(path):
    """Execute a MicroPython build manifest with stand-ins for its commands,
    as tools/manifestfile.py of MicroPython resolves them (paths relative to
    the manifest's folder; package() with files=None takes every .py below
    the package; include() of the port's manifest is the port's business):
    returns (the files it freezes, the micropython-lib packages it requires)."""
    here = path.parent
    files, required = set(), []

    def package(name, files_=None, base_path=".", opt=None, **kw):
        top = (here / base_path / name).resolve()
        listed = kw.get("files", files_)
        if listed is None:
            files.update(top.rglob("*.py"))
        else:
            files.update((top / f).resolve() for f in listed)

    def module(name, base_path=".", opt=None):
        files.add((here / base_path / name).resolve())

    env = {"include": lambda p, **kw: None, "package": package, "module": module,
           "require": lambda name, **kw: required.append(name),
           "metadata": lambda **kw: None, "options": None}
    exec(compile(path.read_text(), str(path), "exec"), env)
    return files, required


def test_the_manifest_freezes_exactly_what_a_board_runs():
    """boards/manifest.py freezes the firmware, the ESP32 HAL and boards (no
    simulator, not the manifest itself) and requires umqtt.simple; main.py
    stays on the filesystem."""
    files, required = manifest_files(mp.ROOT / "boards" / "manifest.py")
    want = {p.resolve() for p in board_modules() if p.name != "main.py"}
    for f in files:
        assert f.exists(), f
    assert sorted(map(str, files - want)) == [] and sorted(map(str, want - files)) == []
    assert required == ["umqtt.simple"]


# What ports/esp32 does around a board's mpconfigboard.cmake (CMakeLists.txt:
# include it, then concatenate SDKCONFIG_DEFAULTS in order, later lines win),
# with boards/mpconfigboard_esp32_common.cmake as that file sets the target.
CMAKE_DRIVER = """
set(CMAKE_BINARY_DIR ${CMAKE_CURRENT_SOURCE_DIR}/build)
include(${MICROPY_BOARD_DIR}/mpconfigboard.cmake)
file(WRITE ${CMAKE_BINARY_DIR}/sdkconfig.combined "")
foreach(f ${SDKCONFIG_DEFAULTS})
    file(READ ${f} text)
    file(APPEND ${CMAKE_BINARY_DIR}/sdkconfig.combined "${text}")
endforeach()
message(STATUS "target=${IDF_TARGET}")
message(STATUS "manifest=${MICROPY_FROZEN_MANIFEST}")
"""


def test_the_board_folder_builds_the_frozen_image_with_the_meter_table(tmp_path):
    """boards/idf/METER_ESP32, run by real cmake as MicroPython's esp32 build
    runs a BOARD_DIR: the sdkconfig fragment puts boards/partitions.csv in the
    image (an absolute path, as ESP-IDF reads a relative one from the port's
    directory), the manifest is boards/manifest.py, the target is the ESP32."""
    (tmp_path / "boards").mkdir()
    (tmp_path / "boards" / "sdkconfig.base").write_text(
        'CONFIG_PARTITION_TABLE_CUSTOM=y\n'
        'CONFIG_PARTITION_TABLE_CUSTOM_FILENAME="partitions-4MiBplus.csv"\n')
    (tmp_path / "boards" / "mpconfigboard_esp32_common.cmake").write_text(
        "set(IDF_TARGET esp32)\nset(SDKCONFIG_DEFAULTS boards/sdkconfig.base)\n")
    (tmp_path / "driver.cmake").write_text(CMAKE_DRIVER)
    board = mp.ROOT / "boards" / "idf" / "METER_ESP32"
    r = subprocess.run([str(mp.ROOT / ".venv" / "bin" / "cmake"),
                        "-DMICROPY_BOARD_DIR=%s" % board, "-P", "driver.cmake"],
                       cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    out = dict(line.split("-- ", 1)[1].split("=", 1) for line in r.stdout.splitlines()
               if "=" in line)
    assert out["target"] == "esp32"
    assert out["manifest"] == str(mp.ROOT / "boards" / "manifest.py")
    config = {}
    for line in (tmp_path / "build" / "sdkconfig.combined").read_text().splitlines():
        if line.startswith("CONFIG_"):
            k, v = line.split("=", 1)
            config[k] = v                      # a later fragment wins
    assert config["CONFIG_PARTITION_TABLE_CUSTOM"] == "y"
    assert config["CONFIG_PARTITION_TABLE_CUSTOM_FILENAME"] == '"%s"' % (
        mp.ROOT / "boards" / "partitions.csv")
    assert config["CONFIG_ESPTOOLPY_FLASHSIZE_4MB"] == "y"
