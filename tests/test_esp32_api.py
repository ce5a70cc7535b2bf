"""Device code uses only modules and functions the ESP32 port has, checked by
mypy against the micropython-esp32-stubs package (also `make typecheck`)."""

import shutil
import subprocess
import sys

import mp

STUBS = mp.VENV / "esp32-stubs"
CONFIG = mp.ROOT / "tools" / "mypy-esp32.ini"
DEVICE = ["firmware", "hal/esp32", "hal/blockrange.py", "boards/esp32_common.py",
          "boards/esp32_devkit_bl0937.py",
          "boards/esp32s3_devkit.py", "boards/esp32c3_devkit.py", "main.py"]


def mypy(cwd, targets):
    env = {"MYPYPATH": str(STUBS), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(CONFIG),
                           "--custom-typeshed-dir", str(STUBS), "--cache-dir",
                           str(mp.ROOT / "build" / "mypy-cache"), *targets],
                          cwd=cwd, env=env, capture_output=True, text=True)


def test_device_code_matches_the_esp32_stubs():
    assert (STUBS / "esp32.pyi").exists(), "run make setup"
    r = mypy(mp.ROOT, DEVICE)
    assert r.returncode == 0, r.stdout + r.stderr


def copy_device(tmp_path):
    for d in ("firmware", "hal", "boards"):
        shutil.copytree(mp.ROOT / d, tmp_path / d)
    shutil.copy(mp.ROOT / "main.py", tmp_path / "main.py")


def test_the_check_catches_an_api_the_esp32_lacks(tmp_path):
    copy_device(tmp_path)
    with open(tmp_path / "firmware" / "tariff.py", "a") as f:
        f.write("\nimport struct\nimport zlib\nX = struct.pack_into_all\n")
    r = mypy(tmp_path, DEVICE)
    assert r.returncode != 0
    assert '"zlib"' in r.stdout and "pack_into_all" in r.stdout


def test_a_wrong_name_in_the_esp32_hal_fails(tmp_path):
    copy_device(tmp_path)
    p = tmp_path / "hal" / "esp32" / "pulses.py"
    p.write_text(p.read_text().replace("Counter.RISING", "Counter.RISE"))
    q = tmp_path / "hal" / "esp32" / "net.py"
    q.write_text(q.read_text().replace("network.STA_IF", "network.STATION"))
    r = mypy(tmp_path, DEVICE)
    assert r.returncode != 0
    assert "RISE" in r.stdout and "STATION" in r.stdout


# Strapping pins, from the chips' datasheets (ESP32 5.1, ESP32-S3 and ESP32-C3
# "Strapping Pins"): their level at a reset chooses the boot mode, so nothing a
# person or the energy IC may hold there at a power-on or brownout reset.
STRAPPING = {"esp32": {0, 2, 5, 12, 15}, "esp32s3": {0, 3, 45, 46}, "esp32c3": {2, 8, 9}}


def test_no_board_puts_an_input_or_a_relay_on_a_strapping_pin():
    """A button held (or a pulse line driven) at a reset would boot the ROM
    loader: the meter stops, a latching relay holds whatever it was. The LED
    may sit on one (an output, as a DevKit's own LED does)."""
    import ast
    boards = [p for p in DEVICE if p.startswith("boards/esp32") and
              p != "boards/esp32_common.py"]
    assert len(boards) == 3
    for path in boards:
        # the board's constants, read without importing it (it needs machine)
        b = {}
        for node in ast.parse((mp.ROOT / path).read_text()).body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                b[node.targets[0].id] = node.value.value
        pins = {k: v for k, v in b.items()
                if k in ("PIN_BUTTON", "PIN_CF", "PIN_RELAY", "PIN_RELAY_SET", "PIN_RELAY_RESET")}
        assert "PIN_BUTTON" in pins and "PIN_CF" in pins, path
        bad = {k: v for k, v in pins.items() if v in STRAPPING[b["CHIP"]]}
        assert bad == {}, (path, bad)
        if b["CHIP"] == "esp32s3":
            assert b["PIN_LED"] not in (38, 48), "the DevKitC-1's RGB LED needs a driver"
