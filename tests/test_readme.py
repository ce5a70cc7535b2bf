"""README.md's examples are what a user sees: its simulator run and its console
session are run as shown and their output compared with the README's."""

import re
import shlex
import subprocess
import sys

from conftest import ROOT

README = (ROOT / "README.md").read_text()


def blocks():
    return re.findall(r"```\n(.*?)```", README, re.S)


def test_the_readme_simulator_example_prints_what_it_shows(tmp_path):
    block = next(b for b in blocks() if b.startswith("$ .venv/bin/python tools/sim.py"))
    lines = block.splitlines()
    cmd, i = "", 0
    while True:
        part = lines[i].lstrip("$ ").rstrip("\\").strip()
        cmd += " " + part
        i += 1
        if not lines[i - 1].endswith("\\"):
            break
    shown = [x for x in lines[i:] if x != "..."]
    argv = shlex.split(cmd)
    assert argv[0] == ".venv/bin/python"
    out = subprocess.run([sys.executable] + argv[1:], cwd=ROOT, capture_output=True,
                         text=True, timeout=120).stdout.splitlines()
    # the README trims credit-state events: what it shows comes in this order
    pos = 0
    for want in shown:
        assert want in out[pos:], (want, out)
        pos = out.index(want, pos) + 1


def test_the_readme_console_session_answers_as_shown(tmp_path):
    block = next(b for b in blocks() if b.startswith("prepaid meter console"))
    lines = block.splitlines()[1:]
    typed = [x[2:] for x in lines if x.startswith("> ")]
    want = [x for x in lines if not x.startswith("> ")]
    pin = re.search(r"--pin (\d+)", README[:README.index(block)][-600:]).group(1)
    p = subprocess.run([sys.executable, str(ROOT / "tools" / "sim.py"), "--console", "--pin",
                        pin, "--flash", str(tmp_path / "m.img")], input="\n".join(typed) + "\n",
                       capture_output=True, text=True, timeout=60)
    assert p.stdout.splitlines() == want, p.stdout
