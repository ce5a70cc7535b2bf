"""Helpers: every test runs the firmware inside the real MicroPython unix port."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT))        # headend (the service and what meterctl shares)
import mp  # noqa: E402

MP_DIR = ROOT / "tests" / "mp"


def run_mp(script, *args, heap=None, timeout=300, check=True, env=None):
    """Run a MicroPython program (a file under tests/mp: linted, compiled by
    tests/test_device_build.py, tracebacks point into it) and return the result."""
    path = Path(script)
    assert path.exists(), "no MicroPython program %s" % path
    e = mp.env()
    if env:
        e.update(env)
    e["MICROPYPATH"] += ":" + str(MP_DIR)     # the helpers in tests/mp (world, ledgerkit)
    r = subprocess.run(mp.argv(path, *args, heap=heap), env=e, capture_output=True,
                       text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError("micropython exited %d\nstdout:\n%s\nstderr:\n%s"
                             % (r.returncode, r.stdout[-4000:], r.stderr[-4000:]))
    return r


def mp_json(script, *args, **kw):
    """Run a MicroPython script whose last stdout line is a JSON object."""
    r = run_mp(script, *args, **kw)
    return json.loads(r.stdout.strip().splitlines()[-1])


class SimResult:
    def __init__(self, proc):
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.lines = []
        for line in proc.stdout.splitlines():
            if line.startswith("{"):
                self.lines.append(json.loads(line))

    @property
    def status(self):
        return [d for d in self.lines if "event" not in d]

    @property
    def events(self):
        return [d for d in self.lines if "event" in d]

    @property
    def last(self):
        return self.lines[-1]


def run_sim(*args, timeout=600):
    """tools/sim.py exactly as a user runs it, with the project's venv Python."""
    p = subprocess.run([sys.executable, str(ROOT / "tools" / "sim.py")]
                       + [str(a) for a in args],
                       capture_output=True, text=True, timeout=timeout)
    return SimResult(p)


@pytest.fixture
def sim():
    return run_sim


class Broker:
    """A real Mosquitto on loopback, on a free port, started by the tests."""

    def __init__(self, workdir, extra=""):
        import shutil
        import socket
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(exe).exists():
            pytest.fail("mosquitto is not installed: `make setup` installs it with apt")
        self.exe = exe
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.dir = Path(workdir)
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text(
            "listener %d 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\npersistence true\n"
            "persistence_location %s/\nautosave_interval 1\n" % (self.port, self.dir)
            # as root, mosquitto would drop to its own user, which cannot read
            # the test's private temp folder
            + ("user root\n" if os.geteuid() == 0 else "") + extra)
        self.proc = None

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    def start(self):
        import socket
        import time
        self.proc = subprocess.Popen([self.exe, "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError("mosquitto did not start")

    def kill(self):
        import signal
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path).start()
    yield b
    b.stop()
