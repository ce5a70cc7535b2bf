#!/usr/bin/env python3
"""Install micropython-lib's umqtt.simple for the unix port into .venv.

PyPI only has it as a source archive without a build script, so pip refuses to
install it; `pip download --no-clean` still unpacks it into our temp dir, from
where the module is placed on MicroPython's path (.venv/lib/micropython)."""

import glob
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mp  # noqa: E402

PACKAGE = "micropython-umqtt.simple==1.3.4"


def main():
    dest = mp.MP_LIB / "umqtt" / "simple.py"
    if dest.exists():
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, TMPDIR=tmp)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                        "--no-clean", "-q", "-d", os.path.join(tmp, "dl"), PACKAGE],
                       env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        found = glob.glob(os.path.join(tmp, "**", "umqtt", "simple.py"), recursive=True)
        if not found:
            sys.exit("could not unpack %s" % PACKAGE)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(found[0], dest)
        (dest.parent / "__init__.py").touch()
    print("installed umqtt.simple ->", dest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
