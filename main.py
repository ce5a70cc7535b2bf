# The meter's entry point on a board (deployed as /main.py). board.json,
# written by tools/deploy.py, names the board and the WiFi; everything else
# (keys, broker, PIN) is in the meter's settings partition from provisioning.
# The sim board runs the simulated meter's console, so a deployment can be
# tried on the unix port.

import json


def main():
    with open("board.json") as f:
        cfg = json.load(f)
    if cfg["board"] == "sim":
        from hal.sim import run
        run.run({"console": True, "flash": "meter.img", "load": cfg.get("load", 0)})
        return
    from hal.esp32 import shell
    if shell.maintenance_requested():
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
