#!/usr/bin/env python3
"""The head-end service under a fleet: N simulated meters (tools/fleet.py's,
50 to a MicroPython process, telemetry every 10 s) against one Mosquitto and
the service (python -m headend, its own process, SQLite). While they run, an
operator's client loads the meters list and a meter page every 2 s and vends
a top-up a second through the web app. Reports the ingest's lag (a message
received by the service to stored), what was stored against what the meters
sent, page times, and the vends' fate.

    tools/bench_headend.py 1000 --seconds 60        (part of make bench)
"""

import argparse
import json
import os
import re
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fleet  # noqa: E402
import mp  # noqa: E402

sys.path.insert(0, str(mp.ROOT))
sys.path.insert(0, str(mp.ROOT / "tests"))
from headend import auth  # noqa: E402
from headend.db import Db  # noqa: E402
from headend.store import Store  # noqa: E402
from headendkit import Web  # noqa: E402


def ms(xs, q):
    return round(fleet.percentile(xs, q) * 1000, 1) if xs else None


def run(n=1000, seconds=60, per_process=50, drain_s=8):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        broker, port = fleet.start_broker(d)
        procs, svc = [], None
        try:
            db = Db(d / "he.sqlite")
            db.migrate()
            auth.Users(db).add("bench", "bench-password", "operator")
            store, secrets = Store(db), []
            with db.tx():
                for i in range(1, n + 1):
                    secrets.append(store.provision("fleet-%04d" % i))
            db.close()
            svc = subprocess.Popen([sys.executable, "-m", "headend", "--db", str(d / "he.sqlite"),
                                    "--broker", "127.0.0.1:%d" % port, "--listen",
                                    "127.0.0.1:0"], cwd=mp.ROOT, stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL, text=True)
            url = re.search(r"listening=(\S+)", svc.stdout.readline()).group(1).rstrip("/")
            web = Web(url)
            web.login("bench", "bench-password")
            _, page = web.get("/")
            csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
            procs, groups = fleet.spawn(d, secrets, port, seconds, per_process, 10, drain_s)
            t0 = time.time()
            lists, pages, vends, k = [], [], 0, 0
            while time.time() - t0 < seconds - 2:
                a = time.perf_counter()
                code, _ = web.get("/")
                lists.append(time.perf_counter() - a) if code == 200 else None
                for _ in range(2):
                    mid = secrets[k % n]["meter_id"]
                    k += 1
                    a = time.perf_counter()
                    code, _ = web.get("/meters/" + mid)
                    pages.append(time.perf_counter() - a) if code == 200 else None
                    code, _ = web.post("/meters/%s/vend" % mid, amount="1", csrf=csrf)
                    vends += code == 200
                time.sleep(max(0, 2 - (time.time() - t0) % 2))
            finals = fleet.collect(d, procs, groups, seconds + drain_s + 120)
            time.sleep(3)                     # the last messages through the ingest
            _, body = web.get("/api/stats")
            st = json.loads(body)
            rss = fleet.proc_stats(svc.pid)[1]
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
            if svc is not None:
                svc.terminate()
                svc.wait(10)
            broker.kill()
            broker.wait()
        con = sqlite3.connect(d / "he.sqlite")
        stored_tel = con.execute("SELECT COUNT(DISTINCT meter || '/' || tseq) FROM readings"
                                 ).fetchone()[0]
        stored_ev = con.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        applied = con.execute("SELECT COUNT(*) FROM vends WHERE status = 'applied'"
                              ).fetchone()[0]
        size = os.path.getsize(d / "he.sqlite")
    return {"meters": n, "seconds": seconds, "reported": len(finals),
            "telemetry_sent": sum(f["telemetry_seq"] for f in finals),
            "telemetry_stored": stored_tel,
            "events_sent": sum(f["events"] for f in finals), "events_stored": stored_ev,
            "lag_p50_ms": st.get("lag_p50_ms"), "lag_p99_ms": st.get("lag_p99_ms"),
            "lag_max_ms": st.get("lag_max_ms"), "forged": st.get("forged", 0),
            "list_p50_ms": ms(lists, 0.5), "list_max_ms": ms(lists, 1.0),
            "page_p50_ms": ms(pages, 0.5), "page_max_ms": ms(pages, 1.0),
            "vends": vends, "vends_applied": applied,
            "service_rss_kib": rss, "db_kib": size // 1024}


def main(argv=None):
    p = argparse.ArgumentParser(prog="tools/bench_headend.py",
                                description=__doc__.splitlines()[0])
    p.add_argument("n", type=int, nargs="?", default=1000)
    p.add_argument("--seconds", type=int, default=60)
    a = p.parse_args(argv)
    r = run(a.n, a.seconds)
    print(json.dumps(r))
    return 0 if r["telemetry_stored"] == r["telemetry_sent"] and \
        r["vends_applied"] == r["vends"] else 1


if __name__ == "__main__":
    sys.exit(main())
