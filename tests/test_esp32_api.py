"""Device code uses only modules and functions the ESP32 port has, checked by
mypy against the micropython-esp32-stubs package."""

import shutil
import subprocess
import sys

import mp

STUBS = mp.VENV / "esp32-stubs"
CONFIG = mp.ROOT / "tools" / "mypy-esp32.ini"
DEVICE_PACKAGES = ["firmware"]


def mypy(cwd, packages):
    env = {"MYPYPATH": str(STUBS), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(CONFIG),
                           "--custom-typeshed-dir", str(STUBS), "--cache-dir",
                           str(mp.ROOT / "build" / "mypy-cache"), *packages],
                          cwd=cwd, env=env, capture_output=True, text=True)


def test_device_code_matches_the_esp32_stubs():
    assert (STUBS / "esp32.pyi").exists(), "run make setup"
    r = mypy(mp.ROOT, DEVICE_PACKAGES)
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_check_catches_an_api_the_esp32_lacks(tmp_path):
    shutil.copytree(mp.ROOT / "firmware", tmp_path / "firmware")
    with open(tmp_path / "firmware" / "tariff.py", "a") as f:
        f.write("\nimport struct\nimport zlib\nX = struct.pack_into_all\n")
    r = mypy(tmp_path, ["firmware"])
    assert r.returncode != 0
    assert '"zlib"' in r.stdout and "pack_into_all" in r.stdout
