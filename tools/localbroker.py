#!/usr/bin/env python3
"""For `make sim`: find or start a local MQTT broker on 127.0.0.1:1883 and make
sure the demo meter sim-0001 is provisioned. Prints the sim.py flags to use
(the host's clock serves as the meter's time source).

A broker already listening there is used as it is. Otherwise Mosquitto (from
apt, installed by `make setup`) is started in the background; its pid is in
build/mosquitto.pid and `make stop-broker` ends it."""

import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mp  # noqa: E402

HOST, PORT = "127.0.0.1", 1883
BUILD = mp.ROOT / "build"
METER = "sim-0001"
DEMO_PIN = "1234"        # the demo meter's technician PIN, printed at start


def listening():
    try:
        socket.create_connection((HOST, PORT), 0.3).close()
        return True
    except OSError:
        return False


def start_mosquitto():
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(exe).exists():
        sys.exit("no broker on %s:%d and mosquitto is not installed (make setup)" % (HOST, PORT))
    BUILD.mkdir(exist_ok=True)
    conf = BUILD / "mosquitto.conf"
    # max_packet_size: no client may send the meters a message larger than a
    # meter would keep (it drops longer ones unread, firmware/mqttlink.py)
    conf.write_text("listener %d %s\nallow_anonymous true\nset_tcp_nodelay true\n"
                    "max_packet_size 65536\npersistence true\n"
                    "persistence_location %s/\n" % (PORT, HOST, BUILD))
    log = open(BUILD / "mosquitto.log", "ab")
    p = subprocess.Popen([exe, "-c", str(conf)], stdout=log, stderr=log,
                         start_new_session=True)
    (BUILD / "mosquitto.pid").write_text(str(p.pid))
    for _ in range(50):
        if listening():
            return
        time.sleep(0.1)
    sys.exit("mosquitto did not start; see build/mosquitto.log")


def main():
    started = False
    if not listening():
        start_mosquitto()
        started = True
    if sys.argv[1:] == ["--broker-only"]:          # make headend, tools/demo.py
        print("--broker %s:%d" % (HOST, PORT))
        return
    secrets = BUILD / ("%s.secrets.json" % METER)
    reg = BUILD / "headend.json"
    entry = json.loads(reg.read_text()).get("meters", {}).get(METER) if reg.exists() else None
    if not (secrets.exists() and entry and "token_key" in entry
            and json.loads(secrets.read_text()).get("pin")):
        # new, or provisioned by an older meterctl (no token key, no PIN): again
        subprocess.run([sys.executable, str(mp.ROOT / "tools" / "meterctl.py"), "provision",
                        "--id", METER, "--out", str(secrets), "--force", "--pin", DEMO_PIN],
                       check=True, stdout=subprocess.DEVNULL)
    pin = json.loads(secrets.read_text()).get("pin")
    print("demo meter %s: technician PIN %s (`login %s`); `button` is the customer's "
          "button%s" % (METER, pin, pin, "; `make stop-broker` stops the Mosquitto started "
                        "for it" if started else ""), file=sys.stderr)
    # the host's clock is the demo meter's time source, as NTP is a real one's
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    print("--broker %s:%d --secrets %s --flash %s --start %s" % (
        HOST, PORT, secrets, BUILD / ("%s.img" % METER), now))


if __name__ == "__main__":
    main()
