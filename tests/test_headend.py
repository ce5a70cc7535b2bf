"""The head-end service without a browser: what it believes, what it sends,
what it refuses (a real Mosquitto, the service process, a simulated meter),
and its database on SQLite and on a real PostgreSQL."""

import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

import paho.mqtt.client as mqtt
import pytest

from conftest import ROOT
from headendkit import Service, Web, headend, until
from test_mqtt import finish, meterctl, provision, start_sim

sys.path.insert(0, str(ROOT))
from firmware.signing import hmac_sha256, seal_input  # noqa: E402
from headend.db import Db, DbError  # noqa: E402
from headend.journal import Journal  # noqa: E402
from headend.store import Store  # noqa: E402


def sealed(key, mid, topic, body):
    text = json.dumps(body)
    sig = hmac_sha256(bytes.fromhex(key), seal_input(mid, topic, text)).hex()
    return text[:-1] + ', "sig": "%s"}' % sig


def client(broker):
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    return c


def test_actions_tokens_and_bad_input(broker, tmp_path):
    svc = Service(tmp_path / "he.sqlite", broker.addr)
    try:
        op = Web(svc.url)
        assert op.login("op", svc.passwords["op"])[0] == 200
        code, page, _ = op.provision("bad id!")
        assert code == 400 and "meter id" in page
        code, page, sec = op.provision("m1", label="Flat 2")
        assert code == 200 and sec["meter_id"] == "m1"
        code, page, _ = op.provision("m1")
        assert code == 400 and "provisioned already" in page
        csrf = op.csrf()
        (tmp_path / "m1.json").write_text(json.dumps(sec))

        for bad in ("abc", "0", "-5", "1.234", "99999999999"):
            code, page = op.post("/meters/m1/vend", amount=bad, csrf=csrf)
            assert code == 400 and "nothing was changed" in page, bad
        assert op.post("/meters/m1/tariff", tariff="{not json", csrf=csrf)[0] == 400
        assert op.post("/meters/m1/relay", action="explode", csrf=csrf)[0] == 400
        assert op.post("/meters/m1/token", type="add", value="x", csrf=csrf)[0] == 400
        assert op.post("/meters/nope/vend", amount="1", csrf=csrf)[0] == 404

        # journalled while the meter is away; a newer relay command supersedes
        for what in ("close", "open"):
            assert op.post("/meters/m1/relay", action=what, csrf=csrf)[0] == 200
        assert op.post("/meters/m1/tariff", csrf=csrf, tariff=json.dumps(
            {"version": 5, "activate": 0, "kind": "flat", "price": 3000,
             "standing_per_day": 0}))[0] == 200
        code, page = op.post("/meters/m1/token", type="add", value="7", csrf=csrf)
        digits = re.search(r"Token (\d{9})", page).group(1)
        # a vend made in error, cancelled before the meter ever saw it
        code, page = op.post("/meters/m1/vend", amount="3", csrf=csrf)
        ref = re.search(r"Vend (V[0-9a-f]+)", page).group(1)
        assert op.post("/meters/m1/cancel", ref="nope", csrf=csrf)[0] == 400
        assert op.post("/meters/m1/cancel", ref=ref, csrf=csrf)[0] == 200

        sim = start_sim("--broker", broker.addr, "--secrets", tmp_path / "m1.json", "--flash",
                        tmp_path / "m1.img", "--credit", 5000, "--load", 1000, "--hours",
                        0.006, "--speed", 1, "--json", "--set", "telemetry_s=10")
        db = sqlite3.connect(svc.db)

        def settled():
            return db.execute("SELECT cmd, status, detail FROM actions ORDER BY id").fetchall()
        want = [("relay", "superseded"), ("relay", "applied"), ("tariff", "applied"),
                ("cancel", "applied")]
        assert until(lambda: [r[:2] for r in settled()] == want, 20), settled()
        assert until(lambda: db.execute("SELECT status FROM vends").fetchall() ==
                     [("cancelled",)], 5)
        assert op.post("/meters/m1/tariff", csrf=csrf, tariff=json.dumps(
            {"version": 6, "activate": 0, "kind": "flat", "price": -1}))[0] == 200
        got = until(lambda: settled()[4][1] != "pending" and settled(), 10)
        assert got[4][1] == "refused" and "price" in got[4][2], got    # the meter's reason
        tel = until(lambda: db.execute("SELECT relay FROM meters").fetchone()[0] == "open", 15)
        assert tel

        # the token the web app issued is one this meter takes
        c = client(broker)
        replies = []
        c.on_message = lambda cl, u, m: replies.append(m.payload.decode())
        c.subscribe("meters/m1/reply", qos=1)
        time.sleep(0.3)
        c.publish("meters/m1/cmd", json.dumps({"ctr": 0, "cmd": "token", "args": [digits]}),
                  qos=1)
        assert until(lambda: any("value=7" in r for r in replies), 10), replies
        c.disconnect()
        r = finish(sim)
        assert [e for e in r.events if e["event"] == "token"]
        assert [e["event"] for e in r.events if e.get("detail") == ref] == ["vend_cancelled"]
        events = db.execute("SELECT COUNT(*), MAX(seq) FROM events").fetchone()
        assert events[0] == events[1] == r.last["events"]   # every event, once
    finally:
        svc.stop()


def test_forged_malformed_and_missing_messages(broker, tmp_path):
    svc = Service(tmp_path / "he.sqlite", broker.addr)
    try:
        op = Web(svc.url)
        op.login("op", svc.passwords["op"])
        key = op.provision("m2")[2]["key"]
        c = client(broker)
        cmds = []
        c.on_message = lambda cl, u, m: cmds.append(json.loads(m.payload))
        c.subscribe("meters/m2/cmd", qos=1)
        time.sleep(0.3)
        tel = {"tseq": 1, "t": 1, "credit": 4000, "energy_wh": "1.500", "pulses": 1,
               "power_w": 10, "relay": "closed", "state": "ok", "clock": "synced"}
        other = "11" * 32
        c.publish("meters/m2/telemetry", sealed(other, "m2", "telemetry", tel), qos=1)
        c.publish("meters/m2/telemetry", json.dumps(tel), qos=1)
        c.publish("meters/m2/telemetry", sealed(key, "m2", "events", tel), qos=1)
        c.publish("meters/m2/telemetry", sealed(key, "m2", "telemetry",
                                                dict(tel, energy_wh="lots")), qos=1)
        c.publish("meters/m2/telemetry", sealed(key, "m2", "telemetry",
                                                dict(tel, credit="9e9")), qos=1)
        c.publish("meters/zz/telemetry", sealed(key, "zz", "telemetry", tel), qos=1)
        c.publish("meters/m2/events", b"\xff\xfe", qos=1)
        c.publish("meters/m2/telemetry", sealed(key, "m2", "telemetry", tel), qos=1)
        db = sqlite3.connect(svc.db)
        assert until(lambda: db.execute("SELECT credit, energy_mwh FROM meters WHERE id='m2'")
                     .fetchone() == (4000, 1500), 10)
        assert db.execute("SELECT COUNT(*) FROM readings").fetchone()[0] == 1
        # events 1 and 4: the service asks the meter for 2.. once, signed
        for seq in (1, 4, 4):
            c.publish("meters/m2/events", sealed(key, "m2", "events", {
                "seq": seq, "t": 1, "event": "boot", "value": 0, "detail": ""}), qos=1)
        assert until(lambda: cmds, 10)
        time.sleep(1)
        assert [(x["cmd"], x["args"]) for x in cmds] == [("resend", ["2"])]
        assert db.execute("SELECT seq FROM events ORDER BY seq").fetchall() == [(1,), (4,)]
        c.disconnect()
    finally:
        svc.stop()


def test_a_message_in_flight_when_the_service_dies_comes_again(broker, tmp_path):
    """The service acknowledges a message to the broker only once it is
    committed: an event that arrived while the database was locked, and the
    service then killed, is stored by the next service."""
    db = tmp_path / "he.sqlite"
    svc = Service(db, broker.addr)
    op = Web(svc.url)
    op.login("op", svc.passwords["op"])
    key = op.provision("m5")[2]["key"]
    lock = sqlite3.connect(db, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")           # the database stops taking writes
    c = client(broker)
    c.publish("meters/m5/events", sealed(key, "m5", "events", {
        "seq": 1, "t": 1, "event": "boot", "value": 0, "detail": ""}), qos=1).wait_for_publish(5)
    time.sleep(1)
    svc.stop(kill=True)
    lock.execute("ROLLBACK")
    c.disconnect()
    svc = Service(db, broker.addr, users=())
    try:
        assert until(lambda: sqlite3.connect(db).execute(
            "SELECT seq, kind FROM events").fetchall() == [(1, "boot")], 10)
    finally:
        svc.stop()


def test_a_vend_survives_the_service_stopping_and_lands_once(broker, tmp_path):
    """Vended while the meter is away, the service stops; the meter comes and
    goes while no service runs; the service starts again and lands the vend
    (the meter's retained `online` and the journal), once; a second restart
    sends nothing more."""
    db = tmp_path / "he.sqlite"
    svc = Service(db, broker.addr)
    op = Web(svc.url)
    op.login("op", svc.passwords["op"])
    (tmp_path / "m3.json").write_text(json.dumps(op.provision("m3")[2]))
    op.post("/meters/m3/vend", amount="4", csrf=op.csrf())
    svc.stop()
    meter = ["--broker", broker.addr, "--secrets", tmp_path / "m3.json", "--flash",
             tmp_path / "m3.img", "--speed", 1, "--json"]
    r = finish(start_sim(*meter, "--credit", 1000, "--hours", 0.0015))
    assert r.last["credit"] == 1000
    sim = start_sim(*meter, "--hours", 0.0025)
    time.sleep(2)
    svc = Service(db, broker.addr, users=())
    try:
        con = sqlite3.connect(db)
        assert until(lambda: con.execute("SELECT status FROM vends").fetchall() ==
                     [("applied",)], 10), con.execute("SELECT * FROM vends").fetchall()
        r = finish(sim)
        assert [e["amount"] for e in r.events if e["event"] == "topup"] == [400]
        assert r.last["credit"] == 1400
    finally:
        svc.stop()


def test_a_meterctl_journal_opens_in_the_service(broker, tmp_path):
    """meterctl's vends.sqlite (schema 2) is the service's first two steps: the
    service's migrations take it over with its vends; a schema newer than the
    code is refused; migrating twice changes nothing."""
    reg, sec = provision(broker.addr, tmp_path)
    r = meterctl(broker.addr, reg, "topup", "m1", 300, "--wait", 0.5)
    ref = r.stdout.splitlines()[0].split("=", 1)[1]
    path = tmp_path / "vends.sqlite"
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] >= 2
    r = headend(path, "migrate")
    assert r.returncode == 0 and "schema=3" in r.stdout
    assert headend(path, "migrate").stdout == r.stdout
    j = Journal(str(path))
    assert j.get(ref)["status"] == "pending" and j.get(ref)["amount"] == 300
    j.close()
    new = sqlite3.connect(path)
    new.execute("PRAGMA user_version=99")
    new.commit()
    r = headend(path, "migrate")
    assert r.returncode == 1 and "newer than this head-end" in r.stderr
    with pytest.raises(DbError):
        Db(str(path)).migrate()


def postgres():
    """A throwaway PostgreSQL cluster on a free port (Debian's postgresql
    server binaries; as root, run as the postgres user)."""
    bins = sorted(p for p in ("/usr/lib/postgresql/%s/bin" % v for v in
                              os.listdir("/usr/lib/postgresql"))
                  if os.path.exists(p + "/initdb")) if os.path.isdir("/usr/lib/postgresql") \
        else []
    if not bins:
        pytest.skip("PostgreSQL server is not installed (apt install postgresql): the "
                    "SQLite path is tested everywhere, this one where it is")
    d = tempfile.mkdtemp(prefix="he-pg-")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    run = []
    if os.geteuid() == 0:
        shutil.chown(d, "postgres")
        run = ["runuser", "-u", "postgres", "--"]
    subprocess.run(run + [bins[-1] + "/initdb", "-D", d + "/data", "-A", "trust", "-U", "he"],
                   check=True, capture_output=True)
    subprocess.run(run + [bins[-1] + "/pg_ctl", "-D", d + "/data", "-w", "-l", d + "/log",
                          "-o", "-p %d -k %s -c listen_addresses=127.0.0.1" % (port, d),
                          "start"], check=True, capture_output=True)
    return d, port, run + [bins[-1] + "/pg_ctl", "-D", d + "/data", "-m", "immediate", "stop"]


def test_the_service_on_postgresql(broker, tmp_path):
    """The journal and store on a real PostgreSQL, then the service on it: a
    vend from the web app lands on a meter that comes online."""
    d, port, stop = postgres()
    try:
        url = "postgresql://he@127.0.0.1:%d/postgres" % port
        r = headend(url, "migrate")
        assert r.returncode == 0 and "schema=3" in r.stdout, r.stderr
        db = Db(url)
        j, store = Journal(db), Store(db)
        store.add_meter({"meter_id": "p1", "key": "22" * 32, "token_key": "33" * 16,
                         "token_start": 123456789, "token_restricted": 0})
        rows = [j.vend("p1", 10 ** 10 + i) for i in range(3)]      # 64-bit amounts
        assert [v["vseq"] for v in rows] == [1, 2, 3]
        j.sent("p1", 1795000000000, rows[0]["ref"], "topup")
        # a reply is no proof (the meter echoes any command's ctr); its event is
        assert j.reply("p1", {"ctr": 1795000000000, "ok": True})["status"] == "pending"
        assert j.event("p1", {"event": "topup", "value": 10 ** 10, "detail": rows[0]["ref"]}
                       )["status"] == "applied"
        with db.tx():
            store.telemetry("p1", {"tseq": 1, "credit": 5, "energy_wh": "2.000"}, time.time())
            assert store.event("p1", {"seq": 2, "event": "boot"}, time.time()) == 1
        assert store.meter("p1")["credit"] == 5 and store.next_ctr("p1") > 1795000000000
        a = j.action("p1", "relay", ["open"])
        assert j.actions("p1", "pending") == [a]
        db.close()

        svc = Service(url, broker.addr, log=tmp_path / "he.log")
        try:
            op = Web(svc.url)
            op.login("op", svc.passwords["op"])
            (tmp_path / "p2.json").write_text(json.dumps(op.provision("p2")[2]))
            assert "is pending" in op.post("/meters/p2/vend", amount="2.50",
                                           csrf=op.csrf())[1]
            r = finish(start_sim("--broker", broker.addr, "--secrets", tmp_path / "p2.json",
                                 "--flash", tmp_path / "p2.img", "--credit", 100, "--hours",
                                 0.0015, "--speed", 1, "--json"))
            assert r.last["credit"] == 350
            db = Db(url)
            assert until(lambda: db.one("SELECT status FROM vends WHERE meter = 'p2'") ==
                         ("applied",), 5)
            assert db.q("SELECT kind, value FROM events WHERE meter = 'p2' AND kind = "
                        "'topup'") == [("topup", 250)]
        finally:
            svc.stop()
    finally:
        subprocess.run(stop, capture_output=True)
        shutil.rmtree(d, ignore_errors=True)


def test_make_demo_moves_within_a_minute(broker, tmp_path):
    """tools/demo.py (make demo) on the test's broker: its meters are online and
    their credit falls on the meters list; the viewer login works; Ctrl-C (here
    SIGTERM) ends the meters and the service with it."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    p = subprocess.Popen([sys.executable, str(ROOT / "tools" / "demo.py"), "--broker",
                          broker.addr, "--dir", tmp_path / "demo", "--listen",
                          "127.0.0.1:%d" % port], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    try:
        web = Web("http://127.0.0.1:%d" % port)

        def logged_in():
            try:
                return web.login("operator", "demo-operator")[0] == 200
            except OSError:             # not listening yet
                return False
        assert until(logged_in, 20)

        def credits():
            page = web.get("/")[1]
            return [int(c.replace(".", "")) for c in
                    re.findall(r'<td class="num">(\d+\.\d\d)</td>', page)]
        first = until(lambda: len(credits()) == 3 and credits(), 20)
        assert first, web.get("/")[1][-2000:]
        assert until(lambda: sum(credits()) < sum(first), 30)
        assert Web(web.base).login("viewer", "demo-viewer")[0] == 200
    finally:
        p.terminate()
        out, _ = p.communicate(timeout=20)
    assert "log in as operator / demo-operator" in out
    left = subprocess.run(["pgrep", "-f", str(tmp_path / "demo")], capture_output=True,
                          text=True).stdout.split()
    assert not left, "processes left running: %s" % left


def test_only_the_meters_event_settles_a_vend(tmp_path):
    """The meter echoes the counter of any command in its reply, so a reply
    proves nothing about a vend: its sealed event does. Errors that only a
    verified top-up gives and that hold for good refuse it; an expired or
    replayed copy does not; a copy that landed after all wins."""
    j = Journal(str(tmp_path / "j.sqlite"))
    a, b, c = j.vend("m", 500), j.vend("m", 700), j.vend("m", 300)
    for ctr, row in ((1, a), (2, b), (3, c)):
        j.sent("m", ctr, row["ref"], "topup")
    assert j.reply("m", {"ctr": 1, "ok": True, "lines": ["credit=9"]})["status"] == "pending"
    for err in ("expired command", "replayed command", "bad signature"):
        assert j.reply("m", {"ctr": 1, "ok": False, "error": err})["status"] == "pending"
    refused = j.reply("m", {"ctr": 2, "ok": False,
                            "error": "credit would be 9000, above the maximum credit 5000"})
    assert refused["status"] == "refused" and "maximum credit" in refused["detail"]
    assert j.event("m", {"event": "topup", "value": 700, "detail": b["ref"]})["status"] == \
        "applied"                                   # a copy the broker held landed later
    used = j.event("m", {"event": "topup", "value": 1, "detail": a["ref"]})
    assert used["status"] == "refused" and "top-up of 1" in used["detail"]
    assert j.event("m", {"event": "vend_cancelled", "detail": c["ref"]})["status"] == \
        "cancelled"
    assert j.event("m", {"event": "topup", "value": 300, "detail": c["ref"]})["status"] == \
        "cancelled"                                 # final
    assert j.event("other", {"event": "topup", "value": 500, "detail": a["ref"]}) is None
