"""tools/deploy.py against the unix port as the "device": mpremote reaches a
unix-port REPL through a TCP-to-pty bridge, the deployed app then boots there
and answers on its console."""

import os
import subprocess
import sys

from conftest import ROOT
from replbridge import ReplBridge, esp32_board
import install_table
import mp
import partitions


def test_deploy_to_a_unix_port_device_then_it_boots(tmp_path):
    dev = tmp_path / "device"
    dev.mkdir()
    reg = tmp_path / "headend.json"
    sec = tmp_path / "d1.json"
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "meterctl.py"), "--registry",
                        str(reg), "provision", "--id", "d1", "--out", str(sec), "--pin", "2468"],
                       capture_output=True, text=True)
    assert r.returncode == 0
    bridge = ReplBridge(dev)
    try:
        r = subprocess.run([sys.executable, str(ROOT / "tools" / "deploy.py"), "--port",
                            "socket://127.0.0.1:%d" % bridge.port, "--board", "sim",
                            "--secrets", str(sec), "--resume", "--no-reset"],
                           capture_output=True, text=True, timeout=300)
    finally:
        bridge.close()
    assert r.returncode == 0, r.stdout + r.stderr
    assert "secrets written" in r.stdout
    assert (dev / "main.py").exists() and (dev / "firmware" / "ledger.mpy").exists()
    assert (dev / "lib" / "umqtt" / "simple.py").exists()
    assert not (dev / "firmware" / "ledger.py").exists()        # compiled only
    assert not (dev / "hal" / "esp32").exists()                  # only the board's HAL
    # the device boots the deployed app: its console answers, with the secrets
    env = dict(os.environ, MICROPYPATH=".frozen::lib")
    p = subprocess.run([mp.micropython(), "main.py"], cwd=dev, env=env, timeout=60,
                       input="status\nlogin 2468\nconfig\n", capture_output=True, text=True)
    out = p.stdout.splitlines()
    assert p.returncode == 0, p.stdout + p.stderr
    assert "pin=set" in out and "session=technician" in out
    assert out.count("ok") == 3


def test_a_frozen_deploy_removes_copies_that_would_shadow_the_frozen_firmware(tmp_path):
    """On a board whose MicroPython has boards/manifest.py frozen in, module
    files on the filesystem come first on sys.path: `--frozen` writes only
    main.py and board.json and removes what an earlier deploy left."""
    dev = tmp_path / "device"
    dev.mkdir()
    chip = tmp_path / "chip.img"        # a board with the meter's partition table
    chip.write_bytes(b"\xff" * 0x8000 + partitions.to_binary(install_table.table_rows())
                     + b"\xff" * (0x400000 - 0x8C00))
    bridge = ReplBridge(dev, esp32_board(tmp_path, chip))
    port = "socket://127.0.0.1:%d" % bridge.port
    try:
        first = subprocess.run([sys.executable, str(ROOT / "tools" / "deploy.py"), "--port",
                                port, "--board", "sim", "--resume", "--no-reset"],
                               capture_output=True, text=True, timeout=300)
        assert first.returncode == 0, first.stdout + first.stderr
        assert (dev / "firmware" / "ledger.mpy").exists()
        # a release installed over the air since (docs/ota.md): main.py would boot it
        (dev / "v" / "1.1.0" / "firmware").mkdir(parents=True)
        (dev / "v" / "1.1.0" / "firmware" / "app.mpy").write_bytes(b"old")
        (dev / "ota.json").write_text('{"current": "1.1.0"}')
        r = subprocess.run([sys.executable, str(ROOT / "tools" / "deploy.py"), "--port", port,
                            "--board", "esp32_devkit_bl0937", "--frozen", "--wifi-ssid", "flat",
                            "--resume", "--no-reset"], capture_output=True, text=True,
                           timeout=300)
    finally:
        bridge.close()
    assert r.returncode == 0, r.stdout + r.stderr
    assert "module copies removed" in r.stdout and "firmware updates cleared" in r.stdout
    assert not (dev / "v").exists() and not (dev / "ota.json").exists()
    assert "board sees: meter 104 KiB" in r.stdout
    for d in ("firmware", "hal", "boards", "lib/umqtt"):
        assert not (dev / d).exists(), d
    assert (dev / "main.py").read_bytes() == (ROOT / "main.py").read_bytes()
    assert '"board": "esp32_devkit_bl0937"' in (dev / "board.json").read_text()


def test_frozen_is_refused_for_the_simulator():
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "deploy.py"), "--port", "x",
                        "--board", "sim", "--frozen"], capture_output=True, text=True)
    assert r.returncode == 2 and "--frozen is for ESP32 boards" in r.stderr
