"""Firmware update figures for `make bench` (docs/ota.md): on the 32-bit
v1.28 interpreter, what checking a whole release costs (RSA-3072 signature,
chunk, bundle and module hashes), and a whole update on the device path
(main.py -> hal/esp32 -> firmware/ with the ESP32 stand-ins, a real
Mosquitto): `meterctl update` (publish the release retained, offer it, the
meter's reply), then the meter's fetch, checks and unpacking to the staged
release's reboot."""

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mp  # noqa: E402
import release  # noqa: E402

sys.path.insert(0, str(mp.ROOT / "tests"))


def run():
    from device import MP32
    if not MP32.exists():
        print("bench_ota: no 32-bit interpreter at %s; skipped" % MP32)
        return None
    from conftest import Broker
    from device import Device
    from test_mqtt import meterctl
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        release.new_key(d / "release.pem")
        rel = release.make("1.1.0", d / "release.pem", d / "rel")
        (d / "key").write_bytes(release.modulus(d / "release.pem"))
        r = subprocess.run([str(MP32), str(mp.ROOT / "tools" / "mpbench" / "ota_verify.py"),
                            str(rel), str(d / "key")], env=mp.env(), capture_output=True,
                           text=True, check=True)
        out = json.loads(r.stdout.strip().splitlines()[-1])
        out["bundle_bytes"] = (rel / "bundle").stat().st_size
        b = Broker(d).start()
        try:
            reg, sec = d / "headend.json", d / "m1.json"
            meterctl(b.addr, reg, "provision", "--id", "m1", "--out", sec,
                     "--release-key", d / "release.pem")
            dev = Device(d / "dev", wifi={"assoc_ms": 0})
            dev.provision(json.loads(sec.read_text()), b.addr)
            dev.boot()
            try:
                end = time.time() + 30
                while "mqtt=connected" not in dev.cmd("status") and time.time() < end:
                    time.sleep(0.2)
                t0 = time.time()
                meterctl(b.addr, reg, "update", "m1", "1.1.0", "--release", rel, timeout=120)
                t1 = time.time()       # published, offered, and the meter has replied
                while dev.report().get("resets") != ["machine.reset"] and time.time() < t0 + 120:
                    time.sleep(0.05)
                out["offer_s"] = round(t1 - t0, 1)
                out["fetch_s"] = round(time.time() - t1, 1)
            finally:
                dev.stop()
        finally:
            b.stop()
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    run()
