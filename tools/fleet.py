#!/usr/bin/env python3
"""tools/fleet.py N: N simulated meters against one Mosquitto, with a head-end.

Each meter has its own flash image, key and load (a daily profile, scaled and
shifted per meter); they run in real time, up to --per-process meters in one
MicroPython process (hal/sim/fleet.py). A head-end client checks the seal of
every message, records event and telemetry sequence numbers, and sends signed
top-ups (--topups-per-s) while the fleet runs. At the end, after a drain in
which the meters only deliver what they queued, it reports messages sent and
received, events and telemetry lost (numbers the meter used that never
arrived), top-ups applied and their round trip p50/p99, CPU and memory per
meter. Exit 0 when nothing was lost and every top-up applied, else 1.

    tools/fleet.py 1000 --seconds 120       (make fleet N=1000)
"""

import argparse
import json
import math
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mp  # noqa: E402
import meterctl  # noqa: E402

mqtt = meterctl.mqtt
PROFILE = [(0, 250), (6 * 3600, 1200), (8 * 3600, 400), (18 * 3600, 2200), (22 * 3600, 350)]


def start_broker(d):
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(exe).exists():
        sys.exit("tools/fleet.py: mosquitto is not installed (make setup)")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    conf = Path(d) / "mosquitto.conf"
    conf.write_text("listener %d 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\n"
                    "max_queued_messages 100000\n" % port
                    + ("user root\n" if os.geteuid() == 0 else ""))
    p = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return p, port
        except OSError:
            time.sleep(0.05)
    p.kill()
    sys.exit("tools/fleet.py: mosquitto did not start")


def provision(reg, n):
    """n meters in the registry, as `meterctl provision` makes them (saved once)."""
    secrets = []
    for i in range(1, n + 1):
        mid = "fleet-%04d" % i
        key = os.urandom(32).hex()
        reg.data["meters"][mid] = {"key": key, "ctr": 0, "seen": 0}
        secrets.append({"meter_id": mid, "key": key})
    reg.save()
    return secrets


def meter_cfg(i, sec, d, port, telemetry_s):
    """tools/sim.py's configuration for meter i: its own image and load."""
    scale, shift = 60 + (i * 37) % 90, (i * 613) % 3600
    rows = sorted(((t + shift) % 86400, w * scale // 100) for t, w in PROFILE)
    rows = [(0, rows[-1][1])] + rows if rows[0][0] else rows
    prof = Path(d) / ("load%d.csv" % i)
    prof.write_text("".join("%d,%d\n" % r for r in rows))
    return {"flash": str(Path(d) / ("m%d.img" % i)), "credit": 10 ** 7, "profile": str(prof),
            "seed": i, "noise": 10, "speed": 1, "report_ms": 0, "secrets": sec,
            "broker": ["127.0.0.1", port], "settings": {"telemetry_s": telemetry_s}}


class HeadEnd:
    """Hears every meter (seals checked), sends top-ups, times their replies."""

    def __init__(self, reg, port):
        self.reg = reg
        self.lock = threading.Lock()
        self.seqs, self.tseqs = {}, {}
        self.online = set()
        self.most_online = 0
        self.received = self.forged = 0
        self.sent_at, self.rtt, self.refused = {}, [], []
        c = self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="fleet-headend")
        c.on_message = self._on
        c.connect("127.0.0.1", port, keepalive=30)
        meterctl.nodelay(c)
        for t in ("events", "telemetry", "reply", "status"):
            c.subscribe("meters/+/" + t, qos=1)
        c.loop_start()

    def _on(self, client, userdata, msg):
        now = time.perf_counter()
        _, mid, kind = msg.topic.split("/")
        with self.lock:
            if kind == "status":
                (self.online.add if msg.payload == b"online" else self.online.discard)(mid)
                self.most_online = max(self.most_online, len(self.online))
                return
            try:
                body = meterctl.opened(self.reg, mid, kind, msg.payload)
            except meterctl.Forged:
                self.forged += 1
                return
            self.received += 1
            if kind == "events":
                self.seqs.setdefault(mid, set()).add(body.get("seq"))
            elif kind == "telemetry":
                self.tseqs.setdefault(mid, set()).add(body.get("tseq"))
            elif (mid, body.get("ctr")) in self.sent_at:
                t0 = self.sent_at.pop((mid, body.get("ctr")))
                if body.get("ok"):
                    self.rtt.append((now - t0) * 1000)
                else:
                    self.refused.append((mid, body.get("error")))

    def topup(self, mid, n):
        cmd = meterctl.signed(self.reg, mid, "topup", ["100", "FLEET-%s-%d" % (mid, n)])
        with self.lock:
            self.sent_at[(mid, cmd["ctr"])] = time.perf_counter()
        self.c.publish("meters/%s/cmd" % mid, json.dumps(cmd), qos=1)

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


def proc_stats(pid):
    """(CPU seconds, resident KiB) of a process."""
    with open("/proc/%d/stat" % pid) as f:
        st = f.read().split(")")[1].split()
    cpu = (int(st[11]) + int(st[12])) / os.sysconf("SC_CLK_TCK")
    rss = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return cpu, rss


def percentile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(math.ceil(q * len(xs))) - 1)] if xs else None


def spawn(d, secrets, port, seconds, per_process, telemetry_s, drain_s):
    """The meters of `secrets` running in real time, per_process to a
    MicroPython process: (processes, the meter indexes of each)."""
    n = len(secrets)
    groups = [list(range(i, min(i + per_process, n))) for i in range(0, n, per_process)]
    env = mp.env()
    procs = []
    for g in groups:
        f = d / ("fleet%d.json" % g[0])
        f.write_text(json.dumps({"seconds": seconds, "drain_s": drain_s, "meters": [
            meter_cfg(i, secrets[i], d, port, telemetry_s) for i in g]}))
        env["FLEET_FILE"] = str(f)
        log = open(d / ("fleet%d.log" % g[0]), "w")
        procs.append(subprocess.Popen(mp.argv(mp.ROOT / "hal" / "sim" / "fleet.py",
                                              heap="%dm" % (8 + len(g))),
                                      env=dict(env), stdout=subprocess.PIPE, stderr=log,
                                      text=True))
        log.close()
    return procs, groups


def collect(d, procs, groups, timeout):
    """Each meter's final figures, once its process ends."""
    finals = []
    for p in procs:
        out, _ = p.communicate(timeout=timeout)
        finals += [json.loads(x) for x in out.splitlines() if x.startswith("{")]
        if p.returncode:
            log = (d / ("fleet%d.log" % groups[procs.index(p)][0])).read_text()
            print("tools/fleet.py: a meter process failed (exit %d):\n%s"
                  % (p.returncode, log[-2000:]), file=sys.stderr)
    return finals


def run(n, seconds=60, per_process=50, telemetry_s=10, topups_per_s=2.0, drain_s=8, d=None):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))   # a socket per meter
    tmp = tempfile.TemporaryDirectory() if d is None else None
    d = Path(tmp.name if tmp else d)
    broker, port = start_broker(d)
    procs, he = [], None
    try:
        reg = meterctl.Registry(d / "headend.json")
        secrets = provision(reg, n)
        he = HeadEnd(reg, port)
        procs, groups = spawn(d, secrets, port, seconds, per_process, telemetry_s, drain_s)
        t_start = time.time()
        # every meter online, then the top-ups while they run
        while len(he.online) < n and time.time() - t_start < seconds / 2:
            time.sleep(0.2)
        t_online = time.time() - t_start
        first = [proc_stats(p.pid) for p in procs]
        t_first = time.time()
        k = 0
        while time.time() - t_start < seconds - 2:
            mid = secrets[k % n]["meter_id"]
            k += 1
            he.topup(mid, k)
            time.sleep(1 / topups_per_s)
        last = [proc_stats(p.pid) for p in procs]
        span = time.time() - t_first
        finals = collect(d, procs, groups, seconds + drain_s + 120)
        time.sleep(1)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        if he is not None:
            he.close()
        broker.kill()
        broker.wait()
        if tmp:
            tmp.cleanup()
    lost_ev = lost_tel = sent = 0
    for f in finals:
        mid = f["id"]
        lost_ev += len(set(range(1, f["events"] + 1)) - he.seqs.get(mid, set()))
        lost_tel += len(set(range(1, f["telemetry_seq"] + 1)) - he.tseqs.get(mid, set()))
        sent += f["mqtt"]["sent"]
    cpu = sum(b[0] - a[0] for a, b in zip(first, last))
    return {"meters": n, "processes": len(procs), "reported": len(finals),
            "seconds": seconds, "online_after_s": round(t_online, 1),
            "most_online": he.most_online,
            "sent": sent, "received": he.received, "forged": he.forged,
            "events": sum(f["events"] for f in finals), "lost_events": lost_ev,
            "telemetry": sum(f["telemetry_seq"] for f in finals), "lost_telemetry": lost_tel,
            "topups_sent": k, "topups_applied": len(he.rtt), "topups_refused": len(he.refused),
            "topups_on_meters": sum(f["topup_count"] for f in finals),
            "topup_p50_ms": percentile(he.rtt, 0.5), "topup_p99_ms": percentile(he.rtt, 0.99),
            "cpu_pct_per_meter": 100 * cpu / span / n,
            "rss_kib_per_meter": sum(r for _, r in last) / n,
            "connects": sum(f["mqtt"]["connects"] for f in finals)}


def main(argv=None):
    p = argparse.ArgumentParser(prog="tools/fleet.py", description=__doc__.splitlines()[0])
    p.add_argument("n", type=int, help="number of meters")
    p.add_argument("--seconds", type=int, default=60, help="how long they run (default 60)")
    p.add_argument("--per-process", type=int, default=50,
                   help="meters per MicroPython process (default 50)")
    p.add_argument("--telemetry-s", type=int, default=10,
                   help="seconds between each meter's telemetry (default 10)")
    p.add_argument("--topups-per-s", type=float, default=2.0,
                   help="signed top-ups the head-end sends per second (default 2)")
    p.add_argument("--dir", help="keep the images, registry and broker config here")
    p.add_argument("--json", action="store_true", help="the report as one JSON object")
    a = p.parse_args(argv)
    if a.n < 1 or a.seconds < 10 or a.per_process < 1 or a.topups_per_s <= 0 \
            or a.telemetry_s < 10:
        p.error("N >= 1, --seconds >= 10, --per-process >= 1, --topups-per-s > 0, "
                "--telemetry-s >= 10")
    if a.dir:
        Path(a.dir).mkdir(parents=True, exist_ok=True)
    r = run(a.n, a.seconds, a.per_process, a.telemetry_s, a.topups_per_s, d=a.dir)
    if a.json:
        print(json.dumps(r))
    else:
        for k, v in r.items():
            print("%-20s %s" % (k, "%.2f" % v if isinstance(v, float) else v))
    ok = r["reported"] == a.n and r["lost_events"] == 0 and r["lost_telemetry"] == 0 \
        and r["topups_applied"] == r["topups_sent"] == r["topups_on_meters"] \
        and r["forged"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
