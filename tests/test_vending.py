"""The head-end's vending journal (tools/vending.py through meterctl) against a
real Mosquitto and simulated meters: a vend is credited once, whatever is
retried, killed or offline."""

import sqlite3
import subprocess
import sys
import time

from conftest import ROOT
from test_mqtt import finish, meterctl, provision, start_sim


def ref_of(r):
    return r.stdout.splitlines()[0].split("=", 1)[1]


def online_once(broker, sec, flash):
    """The meter connects once (its session and subscription stay at the
    broker), then goes offline."""
    return finish(start_sim("--broker", broker.addr, "--secrets", sec, "--flash", flash,
                            "--credit", 1000, "--hours", 0.0015, "--speed", 1, "--json"))


def back_online(broker, sec, flash, seconds=8):
    return finish(start_sim("--broker", broker.addr, "--secrets", sec, "--flash", flash,
                            "--hours", seconds / 3600, "--speed", 1, "--json"))


def test_offline_vend_and_its_retry_credit_once(broker, tmp_path):
    reg, sec = provision(broker.addr, tmp_path)
    flash = tmp_path / "m.img"
    online_once(broker, sec, flash)
    first = meterctl(broker.addr, reg, "topup", "m1", 700, "--wait", 2)
    assert first.returncode == 1 and "is pending" in first.stdout, first.stdout + first.stderr
    ref = ref_of(first)
    retry = meterctl(broker.addr, reg, "topup", "m1", 700, "--ref", ref, "--wait", 2)
    assert retry.returncode == 1 and "status=pending" in retry.stdout
    wrong = meterctl(broker.addr, reg, "topup", "m1", 900, "--ref", ref)
    assert wrong.returncode == 2 and "not 900" in wrong.stderr
    r = back_online(broker, sec, flash)
    assert [e["amount"] for e in r.events if e["event"] == "topup"] == [700]
    assert r.last["credit"] == 1700
    fate = meterctl(broker.addr, reg, "vend", ref)
    assert fate.returncode == 0 and "status=applied" in fate.stdout, fate.stdout
    again = meterctl(broker.addr, reg, "topup", "m1", 700, "--ref", ref)
    assert again.returncode == 0 and "status=applied" in again.stdout
    listing = meterctl(broker.addr, reg, "vends", "m1")
    assert listing.stdout.count("status=applied") == 1 and ref in listing.stdout


def test_a_killed_head_end_loses_and_doubles_nothing(broker, tmp_path):
    reg, sec = provision(broker.addr, tmp_path)
    flash = tmp_path / "m.img"
    online_once(broker, sec, flash)
    p = subprocess.Popen([sys.executable, str(ROOT / "tools" / "meterctl.py"), "--broker",
                          broker.addr, "--registry", str(reg), "topup", "m1", "500"],
                         stdout=subprocess.PIPE, text=True)
    db = tmp_path / "vends.sqlite"
    end = time.time() + 20
    sent = []
    while time.time() < end and not sent:     # killed once the command is out
        time.sleep(0.2)
        if db.exists():
            sent = sqlite3.connect(db).execute("SELECT ref FROM sent").fetchall()
    time.sleep(0.5)
    p.kill()
    p.wait()
    assert sent
    ref = sent[0][0]
    r = back_online(broker, sec, flash)
    assert [e["amount"] for e in r.events if e["event"] == "topup"] == [500]
    listing = meterctl(broker.addr, reg, "vends")
    assert "ref=%s meter=m1 amount=500 status=applied" % ref in listing.stdout, listing.stdout
    retry = meterctl(broker.addr, reg, "topup", "m1", 500, "--ref", ref)
    assert retry.returncode == 0 and "status=applied" in retry.stdout
    r = back_online(broker, sec, flash, 3)
    assert r.last["credit"] == 1500


def test_a_cancel_the_meter_confirms_keeps_the_vend_from_ever_landing(broker, tmp_path):
    reg, sec = provision(broker.addr, tmp_path)
    flash = tmp_path / "m.img"
    online_once(broker, sec, flash)
    down = meterctl("127.0.0.1:1", reg, "topup", "m1", 300, "--ref", "CAN-1")
    assert down.returncode == 1 and "cannot reach the broker" in down.stdout, down.stdout
    p = start_sim("--broker", broker.addr, "--secrets", sec, "--flash", flash,
                  "--hours", 0.004, "--speed", 1, "--json")
    time.sleep(2)
    c = meterctl(broker.addr, reg, "vend", "CAN-1", "--cancel")
    assert c.returncode == 0 and "status=cancelled" in c.stdout, c.stdout + c.stderr
    resend = meterctl(broker.addr, reg, "vend", "CAN-1", "--resend")
    assert resend.returncode == 1 and "cancelled" in resend.stdout
    # a head-end without this journal sends it anyway: the meter refuses it
    other = meterctl(broker.addr, reg, "--journal", tmp_path / "other.sqlite", "topup", "m1",
                     300, "--ref", "CAN-1", "--wait", 5)
    assert other.returncode == 1
    r = finish(p)
    assert r.last["credit"] == 1000
    assert [e for e in r.events if e["event"] == "vend_cancelled"]


def test_the_journal_keeps_a_meters_pending_vends_inside_its_window(tmp_path):
    """Every new vend takes the meter's next vend sequence number; while a
    vend 32 numbers older is still pending the journal refuses a new one
    (the meter remembers 32 and could no longer tell whether it landed). A
    journal of the first schema is migrated with its vends kept."""
    from headend import journal as vending
    old = tmp_path / "v1.sqlite"
    db = sqlite3.connect(old)
    db.execute("CREATE TABLE vends (ref TEXT PRIMARY KEY, meter TEXT NOT NULL, amount INTEGER "
               "NOT NULL, status TEXT NOT NULL DEFAULT 'pending', detail TEXT NOT NULL "
               "DEFAULT '', created REAL NOT NULL, updated REAL NOT NULL)")
    db.execute("CREATE TABLE sent (meter TEXT NOT NULL, ctr INTEGER NOT NULL, ref TEXT NOT "
               "NULL, cmd TEXT NOT NULL, at REAL NOT NULL, PRIMARY KEY (meter, ctr))")
    db.execute("INSERT INTO vends VALUES ('OLD-1', 'm1', 5, 'applied', '', 1, 1)")
    db.execute("PRAGMA user_version=1")
    db.commit()
    db.close()
    j = vending.Journal(old)
    assert j.get("OLD-1")["status"] == "applied" and j.get("OLD-1")["vseq"] is None
    rows = [j.vend("m1", 10) for _ in range(32)]
    assert [r["vseq"] for r in rows] == list(range(1, 33))
    assert j.vend("m2", 10)["vseq"] == 1            # numbers are per meter
    try:
        j.vend("m1", 10)
        raise AssertionError("a 33rd vend with the 1st pending must be refused")
    except vending.JournalError as e:
        assert "pending from 32 vends ago" in str(e) and rows[0]["ref"] in str(e)
    assert j.vend("m1", 10, rows[5]["ref"])["vseq"] == 6     # a retry keeps its number
    j.event("m1", {"event": "topup", "value": 10, "detail": rows[0]["ref"]})
    assert j.vend("m1", 10)["vseq"] == 33


def test_a_head_end_that_lost_its_journal_cannot_land_an_old_vend_again(broker, tmp_path):
    """Issue 17 item 2 over MQTT: the meter has applied vends 1..33 (the
    ledger once remembered only 32 references); a head-end that lost its
    journal retries vend 1 under its reference and number: the meter
    refuses it as stale, nothing lands twice."""
    reg, sec = provision(broker.addr, tmp_path)
    flash = tmp_path / "m.img"
    vends = []
    for i in range(1, 34):
        vends += ["--topup", "%d:10:R%d:%d" % (i // 10, i, i)]
    first = finish(start_sim("--broker", broker.addr, "--secrets", sec, "--flash", flash,
                             "--credit", 1000, "--hours", 0.0015, "--speed", 1, "--json",
                             *vends))
    assert first.last["credit"] == 1330
    p = start_sim("--broker", broker.addr, "--secrets", sec, "--flash", flash,
                  "--hours", 0.003, "--speed", 1, "--json")
    time.sleep(2)
    lost = meterctl(broker.addr, reg, "topup", "m1", 10, "--ref", "R1")
    assert lost.returncode == 1 and "vend_seq=1" in lost.stdout, lost.stdout
    assert "status=refused" in lost.stdout and "stale vend 1" in lost.stdout, lost.stdout
    r = finish(p)
    assert r.last["credit"] == 1330
