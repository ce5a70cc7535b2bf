"""The MQTT sync against a real Mosquitto on loopback, and meterctl."""

import json
import socket
import subprocess
import sys
import threading
import time

import paho.mqtt.client as mqtt

from conftest import ROOT, Broker, SimResult

SIM = [sys.executable, str(ROOT / "tools" / "sim.py")]


def meterctl(broker, registry, *args, timeout=60):
    return subprocess.run([sys.executable, str(ROOT / "tools" / "meterctl.py"), "--broker",
                           broker, "--registry", str(registry)] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=timeout)


def provision(broker, tmp_path, name="m1", pin=None):
    reg = tmp_path / "headend.json"
    sec = tmp_path / ("%s.secrets.json" % name)
    args = ["provision", "--id", name, "--out", sec] + (["--pin", pin] if pin else [])
    r = meterctl(broker, reg, *args)
    assert r.returncode == 0, r.stderr
    return reg, sec


def start_sim(*args):
    return subprocess.Popen(SIM + [str(a) for a in args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(p, timeout=120):
    out, err = p.communicate(timeout=timeout)
    r = SimResult(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    assert r.rc == 0, err[-3000:]
    return r


class Listener:
    """A head-end subscriber with a persistent session: records every message."""

    def __init__(self, broker, topic="meters/#", client_id="test-headend", ca=None):
        """ca: the broker's CA (PEM file) for a TLS listener."""
        self.msgs = []
        self.lock = threading.Lock()
        host, port = broker.split(":")
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                             clean_session=False)
        self.c.on_message = self._on
        self.c.on_connect = lambda c, u, f, rc, p=None: c.subscribe(topic, qos=1)
        self.c.reconnect_delay_set(0.1, 0.5)
        if ca:
            self.c.tls_set(ca_certs=str(ca))
        self.c.connect(host, int(port), keepalive=10)
        self.c.loop_start()
        time.sleep(0.5)

    def _on(self, client, userdata, msg):
        with self.lock:
            body = msg.payload.decode(errors="replace")
            try:
                body = json.loads(body)
            except ValueError:
                pass
            self.msgs.append((msg.topic.split("/")[-1], body))

    def of(self, kind):
        with self.lock:
            return [b for k, b in self.msgs if k == kind]

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


def test_telemetry_and_events_arrive(broker, tmp_path):
    reg, sec = provision(broker.addr, tmp_path)
    hear = Listener(broker.addr)
    r = finish(start_sim("--broker", broker.addr, "--secrets", sec, "--load", 1000,
                         "--hours", 0.25, "--speed", 300, "--json", "--set", "telemetry_s=60",
                         "--start", "2026-11-30T10:00:00Z"))
    time.sleep(0.5)
    hear.close()
    tele = hear.of("telemetry")
    assert len(tele) >= 10
    t = tele[-1]
    for k in ("tseq", "t", "credit", "energy_wh", "power_w", "relay", "state", "clock"):
        assert k in t
    assert t["clock"] == "synced" and t["relay"] == "closed" and t["power_w"] == 1000
    events = hear.of("events")
    assert [e["seq"] for e in events][:2] == [1, 2] and events[0]["event"] == "boot"
    assert "online" in hear.of("status")
    assert r.last["mqtt"]["failures"] == 0


def test_signed_topup_once_replay_and_forgery_rejected(broker, tmp_path):
    reg, sec = provision(broker.addr, tmp_path)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())   # the meter's time source
    p = start_sim("--broker", broker.addr, "--secrets", sec, "--hours", 0.004, "--speed", 1,
                  "--credit", 1000, "--json", "--start", now)
    time.sleep(2)
    ok = meterctl(broker.addr, reg, "topup", "m1", 500, "--ref", "PAY-1")
    assert ok.returncode == 0 and "credit=1500" in ok.stdout, ok.stdout + ok.stderr
    # the same vend again: the journal knows it is applied; nothing is sent
    again = meterctl(broker.addr, reg, "topup", "m1", 500, "--ref", "PAY-1")
    assert again.returncode == 0 and "status=applied" in again.stdout, again.stdout
    # replay the exact signed message, and forge one
    key = json.loads(reg.read_text())["meters"]["m1"]["key"]
    sys.path.insert(0, str(ROOT))
    from firmware.signing import canonical, hmac_sha256
    ctr = json.loads(reg.read_text())["meters"]["m1"]["ctr"]
    args = ["700", "PAY-2"]
    good = {"ctr": ctr + 1, "exp": 0, "cmd": "topup", "args": args,
            "sig": hmac_sha256(bytes.fromhex(key), canonical("m1", ctr + 1, 0, "topup",
                                                             args)).hex()}
    replies = []
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="attacker")
    c.on_message = lambda cl, u, m: replies.append(json.loads(m.payload))
    host, port = broker.addr.split(":")
    c.connect(host, int(port))
    c.subscribe("meters/m1/reply", qos=1)
    c.loop_start()
    time.sleep(0.3)
    forged = dict(good, sig="00" * 32)
    wrong_key = dict(good, sig=hmac_sha256(b"k" * 32, canonical("m1", ctr + 1, 0, "topup",
                                                                 args)).hex())
    tampered = dict(good, args=["70000", "PAY-2"])
    expired = dict(good, ctr=ctr + 5, exp=1000)
    expired["sig"] = hmac_sha256(bytes.fromhex(key), canonical("m1", ctr + 5, 1000, "topup",
                                                               args)).hex()
    unsigned = {"ctr": ctr + 9, "cmd": "topup", "args": args}
    for msg in (forged, wrong_key, tampered, good, good, expired, unsigned):
        c.publish("meters/m1/cmd", json.dumps(msg), qos=1)
        time.sleep(0.3)
    c.publish("meters/m1/cmd", b"\xff{not json", qos=1)
    time.sleep(1)
    c.loop_stop()
    c.disconnect()
    r = finish(p)
    errs = [x.get("error", "") for x in replies]
    assert errs[0] == errs[1] == errs[2] == "bad signature"
    assert replies[3]["ok"] is True and "credit=2200" in replies[3]["lines"]
    assert errs[4].startswith("replayed command")
    assert "expired" in errs[5]                       # the meter's clock is synced
    assert errs[6] == "signature required"
    assert errs[7] == "malformed command"
    rejected = [e for e in r.events if e["event"] == "cmd_rejected"]
    assert len(rejected) >= 6
    assert r.last["credit"] == 2200                  # once each, nothing more


def test_broker_restart_loses_no_event(tmp_path):
    """The broker is killed (SIGKILL) mid-stream and restarted. Events it had
    acknowledged but not yet passed on are gone from the broker; the head-end
    (meterctl watch) sees the gap and the meter sends them again from its log."""
    b = Broker(tmp_path).start()
    reg, sec = provision(b.addr, tmp_path)
    watch = subprocess.Popen([sys.executable, str(ROOT / "tools" / "meterctl.py"), "--broker",
                              b.addr, "--registry", str(reg), "watch", "m1", "--seconds", "25",
                              "--persistent"], stdout=subprocess.PIPE, text=True)
    time.sleep(1.5)
    topups = []
    for i in range(1, 100):
        topups += ["--topup", "%d:1:E%d" % (i, i)]
    # events for 5 s of real time, then 7.5 s more for the meter to reconnect
    # (its backoff after two or three failures) and deliver what it queued
    p = start_sim("--broker", b.addr, "--secrets", sec, "--hours", 0.07, "--speed", 20,
                  "--json", "--report", 10, *topups)
    time.sleep(2.5)
    b.kill()                       # mid-stream
    time.sleep(1.5)
    b.start()                      # same port, persistent sessions reloaded
    r = finish(p)
    out, _ = watch.communicate(timeout=60)
    b.stop()
    lines = [json.loads(x) for x in out.splitlines()]
    seqs = sorted(x["msg"]["seq"] for x in lines if x.get("topic") == "events")
    assert r.last["mqtt"]["failures"] >= 1
    assert seqs == list(range(1, r.last["events"] + 1))     # each once, none missing


def test_reboot_while_offline_delivers_queued_events(broker, tmp_path):
    reg, sec = provision(broker.addr, tmp_path)
    img = tmp_path / "m.img"
    dead = "127.0.0.1:9"         # nothing listens: the meter is offline
    r1 = finish(start_sim("--broker", dead, "--secrets", sec, "--flash", img, "--hours", 0.01,
                          "--speed", 30, "--json", "--topup", "5:100:OFF-1",
                          "--topup", "10:100:OFF-2"))
    assert r1.last["mqtt"]["sent"] == 0
    queued = r1.last["events"]
    hear = Listener(broker.addr)
    r2 = finish(start_sim("--broker", broker.addr, "--flash", img, "--hours", 0.005,
                          "--speed", 5, "--json"))
    time.sleep(0.5)
    hear.close()
    seqs = [e["seq"] for e in hear.of("events")]
    assert seqs[:queued] == list(range(1, queued + 1))
    assert {e["detail"] for e in hear.of("events") if e["event"] == "topup"} >= {"OFF-1", "OFF-2"}
    assert sorted(set(seqs)) == list(range(1, r2.last["events"] + 1))


def test_telemetry_keeps_its_cadence_offline_and_fast(broker, tmp_path):
    """A snapshot every telemetry_s of meter time, online or not, at any
    --speed: the shell sleeps until the next thing due, and a snapshot is one
    of those things (an event-driven shell that forgot it queued 25 where 36
    were due)."""
    _, sec = provision(broker.addr, tmp_path)
    r = finish(start_sim("--broker", "127.0.0.1:9", "--secrets", sec, "--hours", 0.1,
                         "--speed", 60, "--set", "telemetry_s=10", "--json"))
    assert 36 <= r.last["telemetry_seq"] <= 37, r.last       # 360 s of meter time


def test_silent_broker_does_not_delay_the_relay_cut(tmp_path):
    """A TCP listener that accepts and never answers: the meter must still
    cut the supply on the pulse that exhausts the credit."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    port = srv.getsockname()[1]
    held = []
    stop = threading.Event()

    def accept():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])     # hold it open, say nothing
            except OSError:
                pass
    threading.Thread(target=accept, daemon=True).start()
    sec = tmp_path / "s.json"
    sec.write_text(json.dumps({"meter_id": "silent", "key": "11" * 32}))
    try:
        # 10 kW: a pulse every 225 ms; 100 minor units at 2000/kWh last 18 s
        r = finish(start_sim("--broker", "127.0.0.1:%d" % port, "--secrets", sec,
                             "--load", 10000, "--credit", 100, "--price", 2000,
                             "--hours", 0.006, "--speed", 1, "--json"))
    finally:
        stop.set()
        for s in held:
            s.close()
        srv.close()
    assert held, "the meter never tried the silent broker"
    assert r.last["mqtt"]["failures"] >= 1 and r.last["mqtt"]["sent"] == 0
    assert r.last["max_sync_ms"] < 1000
    opened = [e for e in r.events if e["event"] == "relay" and e["relay"] == "open"]
    assert opened and abs(opened[0]["t"] - 18) <= 0.225
    assert r.last["pulses"] == 80 and r.last["credit"] == 0    # not one pulse over


def test_meterctl_read_relay_config_and_tariff(broker, tmp_path):
    reg, sec = provision(broker.addr, tmp_path, pin="2468")
    assert json.loads(sec.read_text())["pin"] == "2468"
    p = start_sim("--broker", broker.addr, "--secrets", sec, "--hours", 0.006, "--speed", 1,
                  "--json")
    time.sleep(2)
    rd = meterctl(broker.addr, reg, "read", "m1")
    assert rd.returncode == 0 and "credit=5000" in rd.stdout and "pin=set" in rd.stdout
    rl = meterctl(broker.addr, reg, "relay", "m1", "open")
    assert rl.returncode == 0 and "relay_mode=open" in rl.stdout
    cf = meterctl(broker.addr, reg, "config", "m1", "low_credit", "900")
    assert cf.returncode == 0 and "low_credit=900" in cf.stdout
    bad = meterctl(broker.addr, reg, "config", "m1", "colour", "blue")
    assert bad.returncode == 1 and "unknown setting" in bad.stdout
    tf = meterctl(broker.addr, reg, "tariff", "m1", ROOT / "examples" / "tariffs" / "block.json")
    assert tf.returncode == 0 and '"kind": "block"' in tf.stdout
    watch = meterctl(broker.addr, reg, "watch", "m1", "--seconds", 2)
    assert watch.returncode == 0 and '"topic": "status", "msg": "online"' in watch.stdout
    # a token needs no signature: it authenticates itself
    tok = meterctl(broker.addr, reg, "token", "m1", 3).stdout.strip()
    sys.path.insert(0, str(ROOT / "tools"))
    import meterctl as mc
    host, port = broker.addr.split(":")
    rep = mc.call((host, int(port)), mc.Registry(reg), "m1", {"ctr": 0, "cmd": "token", "args": [tok]})
    assert rep["ok"] and "token=add" in rep["lines"] and "value=300" in rep["lines"]
    rep = mc.call((host, int(port)), mc.Registry(reg), "m1", {"ctr": 0, "cmd": "token", "args": [tok]})
    assert not rep["ok"] and rep["error"] == "token already used"
    hear = Listener(broker.addr, "meters/m1/events", "resend-check")
    rs = meterctl(broker.addr, reg, "resend", "m1", 1)
    assert rs.returncode == 0 and "resend_from=1" in rs.stdout
    time.sleep(1)
    hear.close()
    assert [e["seq"] for e in hear.of("events")][:2] == [1, 2]   # published again
    unknown = meterctl(broker.addr, reg, "topup", "nobody", 5)
    assert unknown.returncode != 0 and "unknown meter" in unknown.stderr
    finish(p)


def test_wifi_drop_queues_and_delivers(broker, tmp_path):
    reg, sec = provision(broker.addr, tmp_path)
    hear = Listener(broker.addr, "meters/m1/events", "wifi-check")
    r = finish(start_sim("--broker", broker.addr, "--secrets", sec, "--hours", 0.1,
                         "--speed", 60, "--json", "--wifi-down", "60:240",
                         "--topup", "100:5:W1", "--topup", "200:5:W2"))
    time.sleep(0.5)
    hear.close()
    seqs = [e["seq"] for e in hear.of("events")]
    assert sorted(set(seqs)) == list(range(1, r.last["events"] + 1))
    assert {e["detail"] for e in hear.of("events")} >= {"W1", "W2"}
    # the outage was real: the connection dropped, the top-ups were queued and
    # delivered after it (the reason is in the event log)
    assert r.last["mqtt"]["connects"] >= 2 and r.last["mqtt"]["failures"] >= 1, r.last
    assert any(e["event"] == "mqtt_error" and e["detail"] == "WiFi down"
               for e in hear.of("events"))


def test_per_meter_mqtt_credentials(tmp_path):
    """A broker that demands a user name and password: the meter's from its
    secrets get in, a wrong password does not."""
    b = Broker(tmp_path)
    pw = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(pw), "m1", "s3cret"], check=True)
    b.conf.write_text(b.conf.read_text().replace("allow_anonymous true",
                                                 "allow_anonymous false\npassword_file %s" % pw))
    b.start()
    try:
        reg = tmp_path / "headend.json"
        good = tmp_path / "good.json"
        r = meterctl(b.addr, reg, "provision", "--id", "m1", "--out", good,
                     "--mqtt-user", "m1", "--mqtt-pass", "s3cret")
        assert r.returncode == 0
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps(dict(json.loads(good.read_text()), mqtt_pass="wrong")))
        ok = finish(start_sim("--broker", b.addr, "--secrets", good, "--hours", 0.002,
                              "--speed", 1, "--json"))
        no = finish(start_sim("--broker", b.addr, "--secrets", bad, "--hours", 0.002,
                              "--speed", 1, "--json"))
    finally:
        b.stop()
    assert ok.last["mqtt"]["connects"] == 1 and ok.last["mqtt"]["sent"] > 0
    assert no.last["mqtt"]["connects"] == 0 and no.last["mqtt"]["failures"] >= 1


def test_head_end_command_edges(broker, tmp_path):
    """Unsigned commands are reads only (not the button, not emergency credit);
    an absurd counter is refused and locks nothing out; a signed `reboot`
    reboots; a factory reset over MQTT can be confirmed."""
    reg, sec = provision(broker.addr, tmp_path)
    key = bytes.fromhex(json.loads(reg.read_text())["meters"]["m1"]["key"])
    sys.path.insert(0, str(ROOT))
    from firmware.signing import canonical, hmac_sha256

    def signed(ctr, cmd, *args):
        return {"ctr": ctr, "exp": 0, "cmd": cmd, "args": list(args),
                "sig": hmac_sha256(key, canonical("m1", ctr, 0, cmd, list(args))).hex()}

    p = start_sim("--broker", broker.addr, "--secrets", sec, "--hours", 0.006, "--speed", 1,
                  "--credit", 0, "--json", "--set", "emergency_credit=500")
    time.sleep(2)
    replies = {}
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="edge")
    c.on_message = lambda cl, u, m: replies.__setitem__(json.loads(m.payload)["ctr"],
                                                        json.loads(m.payload))
    host, port = broker.addr.split(":")
    c.connect(host, int(port))
    c.subscribe("meters/m1/reply", qos=1)
    c.loop_start()
    time.sleep(0.3)
    base = int(time.time() * 1000)
    msgs = [{"ctr": 1, "cmd": "emergency", "args": []},
            {"ctr": 2, "cmd": "button", "args": []},
            {"ctr": 3, "cmd": "credit", "args": []},
            signed(2 ** 70, "credit"),
            signed(base + 1, "factory-reset"),
            None,                                   # the confirmation, built from the reply
            signed(base + 3, "reboot")]
    for m in msgs:
        if m is None:
            code = replies[base + 1]["lines"][0].split()[-1]
            m = signed(base + 2, "factory-reset", code)
        c.publish("meters/m1/cmd", json.dumps(m), qos=1)
        end = time.time() + 5
        while m["ctr"] not in replies and time.time() < end:
            time.sleep(0.05)
    c.loop_stop()
    c.disconnect()
    r = finish(p)
    assert replies[1]["error"] == replies[2]["error"] == "signature required"
    assert replies[3]["ok"] and replies[3]["lines"] == ["credit=0"]
    assert "counter out of range" in replies[2 ** 70]["error"]
    assert replies[base + 2]["ok"], replies[base + 2]                 # confirmed
    assert replies[base + 3]["lines"] == ["rebooting"], replies[base + 3]
    boots = [e for e in r.events if e["event"] == "boot"]
    assert len(boots) == 2, [e["event"] for e in r.events]           # it did reboot
    assert [e for e in r.events if e["event"] == "factory_reset"]
    assert r.last["credit"] == 0                                      # no emergency taken


def test_an_oversized_command_is_dropped_unread_and_not_redelivered(broker, tmp_path):
    """A 3 MB message on the command topic: the meter throws it away as it
    streams in (never held in RAM), acknowledges it so the broker does not send
    it again, logs the refusal and goes on; a top-up after it lands."""
    reg, sec = provision(broker.addr, tmp_path)
    flash = tmp_path / "m.img"
    p = start_sim("--broker", broker.addr, "--secrets", sec, "--flash", flash, "--hours",
                  0.004, "--speed", 1, "--credit", 1000, "--json")
    time.sleep(2)
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="big")
    host, port = broker.addr.split(":")
    c.connect(host, int(port))
    c.loop_start()
    c.publish("meters/m1/cmd", b"{" + b"x" * 3000000 + b"}", qos=1).wait_for_publish(10)
    c.loop_stop()
    c.disconnect()
    ok = meterctl(broker.addr, reg, "topup", "m1", 500, "--ref", "AFTER-BIG")
    assert ok.returncode == 0 and "credit=1500" in ok.stdout, ok.stdout + ok.stderr
    r = finish(p)
    too_long = [e for e in r.events if e["event"] == "cmd_rejected"]
    assert len(too_long) == 1 and r.last["mqtt"]["failures"] == 0, (too_long, r.last)
    again = finish(start_sim("--broker", broker.addr, "--secrets", sec, "--flash", flash,
                             "--hours", 0.002, "--speed", 1, "--json"))
    assert not [e for e in again.events if e["event"] == "cmd_rejected"]   # not sent again


def test_events_the_ring_dropped_offline_are_reported_not_silent(broker, tmp_path):
    """Offline long enough for the event log's ring to overwrite undelivered
    events: when the meter is back it publishes an `events_lost` event with the
    range, raises the alarm, and delivers everything it still holds."""
    reg, sec = provision(broker.addr, tmp_path)
    flash = tmp_path / "m.img"
    online = ["--broker", broker.addr, "--secrets", sec, "--flash", flash]
    finish(start_sim(*online, "--hours", 0.0015, "--speed", 1, "--json"))   # delivered: 1..n
    ups = []
    for i in range(520):
        ups += ["--topup", "%d:1:L%d" % (10 + i, i)]
    r = finish(start_sim("--flash", flash, "--secrets", sec, "--broker", "127.0.0.1:1",
                         "--hours", 1, "--json", *ups))                     # offline
    assert r.last["events"] > 520
    hear = Listener(broker.addr, "meters/m1/events", "lost-check")
    back = finish(start_sim(*online, "--hours", 0.004, "--speed", 1, "--json"))
    time.sleep(0.5)
    hear.close()
    lost = [e for e in hear.of("events") if e["event"] == "events_lost"]
    assert len(lost) == 1 and lost[0]["value"] > 50, lost
    first, last = map(int, lost[0]["detail"].split("-"))
    seqs = sorted({e["seq"] for e in hear.of("events")})
    assert seqs[0] == last + 1 and seqs[-1] == back.last["events"]
    assert seqs == list(range(last + 1, back.last["events"] + 1))      # the rest, all of it
