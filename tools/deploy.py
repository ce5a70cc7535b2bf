#!/usr/bin/env python3
"""Deploy the meter firmware to a board with mpremote.

    tools/deploy.py --port /dev/ttyUSB0 --board esp32_devkit_bl0937 \\
        --secrets build/sim-0001.secrets.json --wifi-ssid SSID --wifi-pass PASS

Builds the device modules with mpy-cross, copies them (only the HAL the board
needs), main.py and board.json, puts umqtt.simple in /lib (from the local copy
`make setup` made, or with `--mip` from micropython-lib when the host is
online), writes the provisioned secrets (meter id and key, MQTT credentials,
token key, technician PIN) into the meter's settings partition, and resets the
board. With `--install` (a board fresh from a stock MicroPython image) it first
gives the flash the meter's partition table with esptool (tools/install_table.py);
on every ESP32 board it checks the board sees the `meter` partition before
writing anything. With `--frozen` (a MicroPython built with boards/manifest.py) only main.py
and board.json are written, and module copies an earlier deploy left, which would
shadow the frozen ones, are removed. `--port` takes anything mpremote does,
including socket://HOST:PORT.
`make deploy PORT=... BOARD=...` runs it."""

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mp  # noqa: E402
from build_mpy import build  # noqa: E402
import install_table  # noqa: E402

sys.path.insert(0, str(mp.ROOT))
from firmware.schema import PROVISIONED  # noqa: E402  (secrets file -> settings)
from firmware import tls  # noqa: E402

BOARDS = ("sim", "esp32_devkit_bl0937", "esp32s3_devkit", "esp32c3_devkit")


def stage(board, out):
    """The files the board gets, laid out as on its filesystem."""
    built = Path(out) / "mpy"
    build(built)
    dest = Path(out) / "device"
    hal_dir = "sim" if board == "sim" else "esp32"
    for rel in ["firmware", "hal/" + hal_dir]:
        shutil.copytree(built / rel, dest / rel)
    extra = [] if board == "sim" else ["boards/esp32_common.mpy"]
    for rel in ["hal/__init__.mpy", "hal/blockrange.mpy", "boards/__init__.mpy",
                "boards/%s.mpy" % board] + extra:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(built / rel, dest / rel)
    shutil.copy(mp.ROOT / "main.py", dest / "main.py")
    return dest


def removing(paths, said):
    """Python run on the board: remove files and folders (with all in them)."""
    return ("import os\ndef rm(p):\n    try:\n        mode = os.stat(p)[0]\n"
            "    except OSError:\n        return\n    if mode & 0x4000:\n"
            "        for n in os.listdir(p):\n            rm(p + '/' + n)\n"
            "        os.rmdir(p)\n    else:\n        os.remove(p)\n"
            "for d in %r:\n    rm(d)\nprint(%r)\n" % (paths, said))


# Before a --frozen deploy: module copies an earlier deploy left on the
# filesystem come before .frozen on sys.path and would shadow the frozen
# firmware (and take the heap freezing saves).
UNSHADOW = removing(("firmware", "hal", "boards", "lib/umqtt"), "module copies removed")
# Before every deploy: releases installed over the air (docs/ota.md) would be
# booted by main.py instead of the firmware deployed now.
NO_UPDATES = removing(("v", "ota", "ota.json", "ota.json.new"), "firmware updates cleared")


def remote(port, resume, *args):
    cmd = [str(Path(sys.executable).parent / "mpremote"), "connect", port]
    if resume:
        cmd.append("resume")
    r = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise SystemExit("mpremote %s failed:\n%s%s" % (" ".join(args[:3]), r.stdout, r.stderr))
    return r.stdout


def board_chip(board):
    """esptool's --chip for a board: the CHIP its module names."""
    m = re.search(r'^CHIP = "(\w+)"', (mp.ROOT / "boards" / (board + ".py")).read_text(), re.M)
    return m.group(1)


def secrets_code(board, secrets):
    """Python run on the board: the secrets into its settings partition."""
    changes = {PROVISIONED[k]: v for k, v in secrets.items() if k in PROVISIONED}
    if secrets.get("mqtt_ca"):      # its certificate goes as a file (main())
        changes["mqtt_ca"] = tls.pin(tls.der(secrets["mqtt_ca"]))
    if secrets.get("release_key"):  # so does the release key
        changes["release_key"] = tls.pin(bytes.fromhex(secrets["release_key"]))
    pin = secrets.get("pin")
    return ("import boards.{b} as B\nfrom firmware.settings import Settings\n"
            "s = Settings(B.settings_flash(), {{}})\ns.save({c!r})\n"
            "if {p!r}:\n    from firmware.auth import Auth\n    Auth(s, 0).set_pin({p!r})\n"
            "print('secrets written')\n").format(b=board, c=changes, p=pin or "")


def main(argv=None):
    p = argparse.ArgumentParser(prog="tools/deploy.py", description=__doc__.splitlines()[0])
    p.add_argument("--port", required=True, help="serial port or socket://HOST:PORT")
    p.add_argument("--board", required=True, choices=BOARDS)
    p.add_argument("--secrets", help="secrets file from `meterctl provision`")
    p.add_argument("--wifi-ssid", default="")
    p.add_argument("--wifi-pass", default="")
    p.add_argument("--ntp-server", default="", metavar="HOST[:PORT]",
                   help="the meter's time server (default pool.ntp.org)")
    p.add_argument("--mip", action="store_true", help="install umqtt.simple with mip")
    p.add_argument("--frozen", action="store_true",
                   help="the board runs a MicroPython build with boards/manifest.py frozen "
                        "in: write only main.py and board.json, and remove module copies "
                        "an earlier deploy left (they would shadow the frozen ones)")
    p.add_argument("--install", action="store_true",
                   help="the board runs a stock MicroPython image: first write the meter's "
                        "partition table at 0x8000 with esptool and erase the new `meter` "
                        "partition and the head of the filesystem (MicroPython formats it "
                        "on the next boot); a board that has the table already keeps it")
    p.add_argument("--wipe-ledger", action="store_true",
                   help="with --install: replace a different `meter` partition, losing "
                        "the ledger in it")
    p.add_argument("--esptool", default="", metavar="CMD",
                   help="esptool command (default: this Python's esptool module)")
    p.add_argument("--resume", action="store_true",
                   help="do not soft-reset the board when connecting")
    p.add_argument("--no-reset", action="store_true", help="leave the board running")
    a = p.parse_args(argv)
    secrets = {}
    if a.secrets:
        try:
            secrets = json.loads(Path(a.secrets).read_text())
            if secrets.get("mqtt_ca"):
                tls.der(secrets["mqtt_ca"])
            bytes.fromhex(secrets.get("release_key", ""))
        except (OSError, ValueError) as e:
            p.error("--secrets: %s" % e)
    if a.frozen and a.board == "sim":
        p.error("--frozen is for ESP32 boards (the simulator freezes nothing)")
    if a.install and a.board == "sim":
        p.error("--install is for ESP32 boards (the simulator has no partition table)")
    if a.install:
        install_table.install(a.port, board_chip(a.board), a.esptool, a.wipe_ledger)
    if a.board != "sim":
        install_table.check(lambda code: remote(a.port, a.resume, "exec", code))
    with tempfile.TemporaryDirectory() as tmp:
        if a.frozen:
            dev = Path(tmp) / "device"
            dev.mkdir()
            shutil.copy(mp.ROOT / "main.py", dev / "main.py")
        else:
            dev = stage(a.board, tmp)
        cfg = {"board": a.board, "wifi_ssid": a.wifi_ssid, "wifi_pass": a.wifi_pass}
        if a.ntp_server:
            cfg["ntp_server"] = a.ntp_server
        (dev / "board.json").write_text(json.dumps(cfg))
        if secrets.get("mqtt_ca"):      # hal/esp32/board.py CA_PATH; pinned in settings
            (dev / "mqtt_ca.der").write_bytes(tls.der(secrets["mqtt_ca"]))
        if secrets.get("release_key"):  # hal/esp32/board.py RELEASE_KEY; pinned too
            (dev / "release.key").write_bytes(bytes.fromhex(secrets["release_key"]))
        dirs = sorted({str(f.parent.relative_to(dev)) for f in dev.rglob("*")
                       if f.is_file() and f.parent != dev})
        mk = "import os\nfor d in %r:\n    try:\n        os.mkdir(d)\n    except OSError:\n" \
             "        pass\n" % ((["lib"] if a.frozen else ["lib", "lib/umqtt"]) + dirs)
        print(remote(a.port, a.resume, "exec", NO_UPDATES).strip())
        if a.frozen:
            print(remote(a.port, a.resume, "exec", UNSHADOW).strip())
        remote(a.port, a.resume, "exec", mk)
        for d in [""] + dirs:
            files = [str(f) for f in sorted((dev / d).iterdir()) if f.is_file()]
            if files:
                remote(a.port, a.resume, "fs", "cp", *files, ":" + (d + "/" if d else "./"))
        if a.frozen:
            pass                    # umqtt.simple is frozen with the firmware
        elif a.mip:
            remote(a.port, a.resume, "mip", "install", "umqtt.simple")
        else:
            src = mp.MP_LIB / "umqtt"
            remote(a.port, a.resume, "fs", "cp", str(src / "__init__.py"),
                   str(src / "simple.py"), ":lib/umqtt/")
        if secrets:
            print(remote(a.port, a.resume, "exec", secrets_code(a.board, secrets)).strip())
        if not a.no_reset:
            remote(a.port, a.resume, "reset")
    print("deployed %s to %s" % (a.board, a.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
