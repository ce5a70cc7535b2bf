"""The device lane: the real main.py -> hal/esp32 -> firmware/ on the 32-bit
MicroPython v1.28 unix build (../shared/tools/micropython32), with the ESP32
stand-ins of tests/esp32fake/ and the umqtt.simple a board freezes
(../shared/ref/), its serial console on a pty."""

import json
import os
import pty
import select
import subprocess
import sys
import time
import tty
from pathlib import Path

import pytest

from conftest import ROOT
from consolepty import PtyIO
from ntpserver import NtpServer
import mp

SHARED = Path(os.environ.get("METER_SHARED", ROOT.parent / "shared"))
MP32 = SHARED / "tools" / "micropython32" / "micropython"
FAKES = ROOT / "tests" / "esp32fake"
UMQTT = {"1.3.4": mp.MP_LIB, "1.7.0": SHARED / "ref" / "umqtt.simple-1.7.0",
         "1.8.0": SHARED / "ref" / "umqtt.simple-1.8.0"}
BOARD = "esp32_devkit_bl0937"
PERIOD = 1 << 30


def need_shared():
    """The lane needs the 32-bit interpreter and the reference umqtt versions
    from ../shared (CI and developers have it; a bare clone elsewhere may not)."""
    if not MP32.exists():
        pytest.skip("no 32-bit v1.28 interpreter at %s (../shared is missing): the "
                    "device lane cannot run here" % MP32)
    if not (UMQTT["1.7.0"] / "umqtt" / "simple.py").exists():
        pytest.skip("no reference umqtt.simple in %s" % (SHARED / "ref"))


def mp32_env(world, umqtt="1.7.0", code=ROOT, fakes=FAKES):
    e = dict(os.environ)
    # the port's own modules (fakes), then the frozen umqtt, then the filesystem
    e["MICROPYPATH"] = "%s:%s:%s" % (fakes, UMQTT.get(umqtt, umqtt), code)
    e["DEVICE_WORLD"] = str(world)
    return e


class Device(PtyIO):
    """One simulated ESP32 meter: its flash image, its world, its console."""

    def __init__(self, tmp, umqtt="1.7.0", heap="1024k", code=ROOT, fakes=FAKES, interp=MP32,
                 **world):
        """code: where the firmware is (the sources, or .mpy files as deployed);
        fakes: where the ESP32 stand-ins are (compiled ones cost less heap);
        interp: the MicroPython that runs it (the 32-bit v1.28 one: the board's ints)."""
        need_shared()
        self.interp = str(interp)
        self.code = Path(code)
        self.fakes = fakes
        self.dir = Path(tmp)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.umqtt = umqtt
        self.heap = heap
        self.world_path = self.dir / "world.json"
        self.report_path = self.dir / "report.json"
        self.world = {"flash": str(self.dir / "flash.img"), "flash_blocks": 26,
                      "ticks_start": PERIOD - 20000, "pulses_per_s": 0,
                      "wifi": {"assoc_ms": 500}, "report": str(self.report_path),
                      "rtc_mem": str(self.dir / "rtc.mem"),
                      "dns": {"hosts": {"pool.ntp.org": "127.0.0.1",
                                        "broker.test": "127.0.0.1"}}}
        self.world.update(world)
        # the meter's time server, on loopback (world "ntp": offset_s, down)
        ntp = self.world.pop("ntp", {})
        self.ntp = NtpServer(ntp.get("offset_s", 0), ntp.get("down", False))
        self.board = {"board": BOARD, "wifi_ssid": "flat", "wifi_pass": "secret",
                      "ntp_server": "127.0.0.1:%d" % self.ntp.port}
        self.proc = None
        self.master = None
        self.buf = b""

    def write_world(self):
        self.world_path.write_text(json.dumps(self.world))
        (self.dir / "board.json").write_text(json.dumps(self.board))

    def run(self, code, timeout=60):
        """Run code on the board (as deploy's mpremote exec does)."""
        self.write_world()
        r = subprocess.run([self.interp, "-c", code],
                           cwd=self.dir, env=mp32_env(self.world_path, self.umqtt, self.code, self.fakes),
                           capture_output=True, text=True, timeout=timeout)
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout

    def provision(self, secrets, broker=None):
        """What tools/deploy.py writes into the settings partition."""
        sys.path.insert(0, str(ROOT / "tools"))
        from deploy import secrets_code
        secrets = dict(secrets)
        if broker:
            host, port = broker.split(":")
            secrets.setdefault("mqtt_host", host)
            secrets.setdefault("mqtt_port", int(port))
        out = self.run(secrets_code(self.board["board"], secrets))
        assert "secrets written" in out
        if secrets.get("release_key"):      # the files deploy writes beside main.py
            (self.dir / "release.key").write_bytes(bytes.fromhex(secrets["release_key"]))

    def boot(self, wait_for=b"> ", power_on=True):
        """Power on (or, with power_on=False, the restart after a reset: RTC
        memory is kept): main.py runs with the console on a pty; after main.py
        returns, the REPL (-i), as on a board."""
        self.stop()
        self.write_world()
        if power_on and os.path.exists(self.world["rtc_mem"]):
            os.unlink(self.world["rtc_mem"])
        if self.report_path.exists():
            self.report_path.unlink()
        self.master, slave = pty.openpty()
        tty.setraw(slave)
        self.proc = subprocess.Popen(
            [self.interp, "-X", "heapsize=%s" % self.heap, "-i", str(self.code / "main.py")],
            cwd=self.dir, env=mp32_env(self.world_path, self.umqtt, self.code, self.fakes), stdin=slave,
            stdout=slave, stderr=subprocess.PIPE, close_fds=True)
        os.close(slave)
        self.buf = b""
        if wait_for:
            return self.read_until(wait_for)

    def diagnose(self):
        return "\nstderr: " + self.stderr_tail()

    def drain(self, seconds):
        """Read what the console prints for a while."""
        end = time.time() + seconds
        while time.time() < end:
            r, _, _ = select.select([self.master], [], [], max(0, end - time.time()))
            if r:
                try:
                    self.buf += os.read(self.master, 65536)
                except OSError:
                    return

    def send(self, data):
        os.write(self.master, data)

    def cmd(self, line, timeout=20):
        """One console line; returns the reply lines, the last being ok/error."""
        self.send(line.encode() + b"\r")
        out = self.read_until(b"\r\n> ", timeout).decode(errors="replace")
        lines = out[:-len("\r\n> ")].split("\r\n")
        return lines[1:]

    def report(self):
        try:
            return json.loads(self.report_path.read_text())
        except (OSError, ValueError):
            return {}

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stderr_tail(self):
        if self.proc is None or self.proc.poll() is None:
            return "(running)"
        return self.proc.stderr.read().decode(errors="replace")[-2000:]

    def stop(self):
        # (the NTP server outlives a stop: boot() stops the board first)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait(10)
        if self.master is not None:
            os.close(self.master)
            self.master = None
