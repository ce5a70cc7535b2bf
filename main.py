# The meter's entry point on a board (deployed as /main.py). board.json,
# written by tools/deploy.py, names the board and the WiFi; everything else
# (keys, broker, PIN) is in the meter's settings partition from provisioning.
# The sim board runs the simulated meter's console, so a deployment can be
# tried on the unix port.

import json
import os
import sys

# Firmware updates (firmware/ota.py, docs/ota.md): ota.json names the
# confirmed release (`current`, none: the firmware deployed with this file)
# and one on `trial`; each lives in v/<version>/ with an index of its modules'
# hashes. This file is never updated: it picks what runs, before anything of
# the firmware is imported (a package imported from one folder would keep
# taking its modules from there).
STATE = "ota.json"
MAX_TRIAL_BOOTS = 3       # a release that cannot boot this often goes back


def intact(version):
    """Every module of the release there, as its index says."""
    import hashlib
    try:
        with open("v/%s/index.json" % version) as f:
            files = json.load(f)["files"]
        for path, size, digest in files:
            with open("v/%s/%s" % (version, path), "rb") as f:
                d = f.read()
            if len(d) != size or "".join("%02x" % b for b in hashlib.sha256(d).digest()) != digest:
                return False
        return True
    except (OSError, ValueError, KeyError, TypeError):
        return False


def save(st):
    with open(STATE + ".new", "w") as f:
        json.dump(st, f)
    os.rename(STATE + ".new", STATE)


def pick():
    """(version to run or None for the deployed one, whether it is on trial)."""
    try:
        with open(STATE) as f:
            st = json.load(f)
    except (OSError, ValueError):
        return None, False
    trial = st.get("trial")
    if trial:
        st["boots"] = st.get("boots", 0) + 1
        if st["boots"] <= MAX_TRIAL_BOOTS and intact(trial):
            save(st)
            return trial, True
        st.update(trial=None, failed=trial, boots=0)
        save(st)
    for v in (st.get("current"), st.get("previous")):
        if v and intact(v):
            return v, False
    return None, False


def give_up(version):
    """A release on trial failed to start: the next boot runs the one before."""
    with open(STATE) as f:
        st = json.load(f)
    if st.get("trial") == version:
        st.update(trial=None, failed=version, boots=0)
        save(st)


def main():
    with open("board.json") as f:
        cfg = json.load(f)
    if cfg["board"] == "sim":
        from hal.sim import run
        run.run({"console": True, "flash": "meter.img", "load": cfg.get("load", 0)})
        return
    # Ctrl-C on the console must not stop a meter, not even while it boots
    # (seconds of imports: a tenant holding Ctrl-C across a power cut would
    # reach the REPL and the keys); the meter's loop keeps it off, maintenance
    # mode turns it back on.
    import micropython
    micropython.kbd_intr(-1)
    version, trial = pick()
    if version:
        sys.path.insert(0, "v/" + version)
    try:
        meter(cfg)
    except Exception:
        if not trial:
            raise
        give_up(version)
        import machine
        machine.reset()


def meter(cfg):
    from hal.esp32 import shell
    if shell.maintenance_requested():
        import micropython
        micropython.kbd_intr(3)
        print("maintenance mode: the meter is stopped and the watchdog is off; "
              "machine.reset() starts it again")
        return
    from firmware.outbox import Outbox
    from firmware.sync import from_settings
    pkg = __import__("boards." + cfg["board"])
    board = getattr(pkg, cfg["board"])
    hal = board.build_hal(cfg.get("wifi_ssid", ""), cfg.get("wifi_pass", ""))
    if cfg.get("ntp_server"):          # "host" or "host:port"
        hp = cfg["ntp_server"].split(":")
        hal.time_source.host = hp[0]
        hal.time_source.port = int(hp[1]) if len(hp) > 1 else 123
    shell.run(board, hal, lambda app: from_settings(app, hal.wifi, Outbox(hal.outbox_flash)))


main()
