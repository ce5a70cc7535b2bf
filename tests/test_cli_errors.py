"""What a new user types wrong gets a sentence, not a traceback."""

import os
import subprocess
import sys

from conftest import ROOT

MC = [sys.executable, str(ROOT / "tools" / "meterctl.py")]


def run(*args, timeout=30):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True,
                          timeout=timeout)


def test_meterctl_mistakes(tmp_path):
    reg = tmp_path / "h.json"
    r = run(*MC, "--registry", reg, "provision", "--id", "bad/id#")
    assert r.returncode == 2 and "--id" in r.stderr and "Traceback" not in r.stderr
    r = run(*MC, "--registry", reg, "provision", "--id", "m1", "--pin", "12")
    assert r.returncode == 2 and "--pin: 4 to 12 digits" in r.stderr
    assert not reg.exists()                          # nothing provisioned
    assert run(*MC, "--registry", reg, "provision", "--id", "m1", "--out",
               tmp_path / "s.json").returncode == 0
    for args in (["read", "nosuch"], ["read", "bad/id#"], ["relay", "nosuch", "open"]):
        r = run(*MC, "--registry", reg, *args, timeout=5)     # at once, not after 20 s
        assert r.returncode == 1 and "unknown meter" in r.stderr, (args, r.stderr)
    r = run(*MC, "--registry", reg, "--broker", "127.0.0.1:1", "read", "m1")
    assert r.returncode == 1 and "cannot reach the broker at 127.0.0.1:1" in r.stderr
    assert "Traceback" not in r.stderr


def test_console_tool_runs_as_readme_shows():
    """`tools/console.py` is executable and finds pyserial (the venv's) whichever
    python3 comes first on PATH."""
    r = subprocess.run([str(ROOT / "tools" / "console.py"), "--help"], capture_output=True,
                       text=True, timeout=30, env=dict(os.environ, METER_REEXEC=""))
    assert r.returncode == 0 and "usage: tools/console.py" in r.stdout, r.stderr
