#!/usr/bin/env python3
"""make demo: the whole system on this machine, moving within a minute.

A local Mosquitto (found or started, as for `make sim`), the head-end service
on a fresh database (build/demo/), a few simulated meters provisioned by it
and running in real time with varying loads, and two logins. Open the printed
address in a browser: vend a top-up, watch the credit fall, open a tenant
page. Ctrl-C stops the meters and the service (the broker keeps running;
`make stop-broker`)."""

import argparse
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mp  # noqa: E402

sys.path.insert(0, str(mp.ROOT))
from headend import auth  # noqa: E402
from headend.db import Db  # noqa: E402
from headend.store import Store  # noqa: E402

DIR = mp.ROOT / "build" / "demo"
LOGINS = (("operator", "demo-operator", "operator"), ("viewer", "demo-viewer", "viewer"))
LOADS = (600, 1500, 2500, 900, 3000, 400)       # watts, one per meter


def main(argv=None):
    p = argparse.ArgumentParser(prog="tools/demo.py", description=__doc__.splitlines()[0])
    p.add_argument("--meters", type=int, default=3, help="simulated meters (1-20, default 3)")
    p.add_argument("--listen", default="127.0.0.1:8080", metavar="HOST:PORT")
    p.add_argument("--broker", metavar="HOST:PORT",
                   help="a running broker (default: the local one, found or started)")
    p.add_argument("--dir", default=str(DIR), help="its database, images and logs (emptied "
                   "first; default build/demo)")
    a = p.parse_args(argv)
    if not 1 <= a.meters <= 20:
        p.error("--meters: 1 to 20")
    broker = ["--broker", a.broker] if a.broker else subprocess.run(
        [sys.executable, str(mp.ROOT / "tools" / "localbroker.py"), "--broker-only"],
        check=True, capture_output=True, text=True).stdout.split()
    d = Path(a.dir).resolve()
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    db = Db(d / "headend.sqlite")
    db.migrate()
    users, store = auth.Users(db), Store(db)
    for name, password, role in LOGINS:
        users.add(name, password, role)
    meters = []
    for i in range(1, a.meters + 1):
        s = store.provision("demo-%d" % i, "Flat %d" % i)
        (d / ("demo-%d.secrets.json" % i)).write_text(json.dumps(s))
        meters.append(s["meter_id"])
    tenant = store.meter(meters[0])["tenant"]
    db.close()
    procs = [subprocess.Popen([sys.executable, "-m", "headend", "--db",
                               str(d / "headend.sqlite"), "--listen", a.listen] + broker,
                              cwd=mp.ROOT)]
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for i, mid in enumerate(meters):
        log = open(d / ("%s.log" % mid), "w")
        procs.append(subprocess.Popen(
            [sys.executable, str(mp.ROOT / "tools" / "sim.py")] + broker +
            ["--secrets", str(d / ("%s.secrets.json" % mid)), "--flash",
             str(d / ("%s.img" % mid)), "--credit", str(500 + 700 * i), "--price", "2500",
             "--load", str(LOADS[i % len(LOADS)]), "--noise", "30", "--seed", str(i),
             "--start", now, "--set", "telemetry_s=10", "--report", "60"],
            stdout=log, stderr=subprocess.STDOUT))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))    # stop the meters too
    url = "http://%s/" % a.listen
    print("\nhead-end: %s  (log in as operator / demo-operator, or viewer / demo-viewer)\n"
          "tenant page of demo-1: %st/%s\nmeters: %s (logs in %s)\nCtrl-C stops the demo.\n"
          % (url, url, tenant, ", ".join(meters), d), flush=True)
    try:
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        print("tools/demo.py: a process ended; see %s" % d, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    sys.exit(main())
