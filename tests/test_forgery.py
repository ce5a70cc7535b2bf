"""Issue 17 item 9 (and the head-end side of 7): the head-end believes only
what the meter signed. Forged replies, events and telemetry, from anyone
on the broker, change no vend, no registry entry and no exit code; odd
payloads never stop `meterctl watch`; a first event whose seq is not 1 is
reported as a gap. Real Mosquitto, real simulator, meterctl as users run it."""

import json
import subprocess
import sys
import time

import paho.mqtt.client as mqtt

from conftest import ROOT
from test_mqtt import finish, meterctl, provision, start_sim

sys.path.insert(0, str(ROOT))
from firmware.signing import Hmac, seal  # noqa: E402


class Forger:
    """Answers every command to m1 with forged `ok` replies and forged events."""

    def __init__(self, broker):
        host, port = broker.split(":")
        self.tried = 0
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="forger")
        self.c.on_message = self._on
        self.c.connect(host, int(port))
        self.c.subscribe("meters/m1/cmd", qos=1)
        self.c.loop_start()
        time.sleep(0.5)

    def pub(self, topic, payload):
        self.c.publish("meters/m1/" + topic, payload, qos=1)
        self.tried += 1

    def _on(self, client, userdata, msg):
        try:
            cmd = json.loads(msg.payload)
            ctr, ref = cmd["ctr"], (cmd.get("args") or ["", ""])[1:2]
        except (ValueError, KeyError, TypeError, IndexError):
            return
        body = json.dumps({"ctr": ctr, "ok": True, "lines": ["credit=123456789"]})
        self.pub("reply", body)                                         # unsigned
        self.pub("reply", seal(Hmac(b"k" * 32), "m1", "reply", body))   # another key
        self.pub("reply", body[:-1] + ', "sig": "' + "0" * 64 + '"}')
        ev = json.dumps({"seq": 10 ** 9, "t": 0, "event": "topup", "value": 100,
                         "detail": ref[0] if ref else ""})
        self.pub("events", ev)
        self.pub("events", seal(Hmac(b"k" * 32), "m1", "events", ev))

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


def test_forged_replies_and_events_are_never_believed(broker, tmp_path):
    reg, sec = provision(broker.addr, tmp_path)
    flash = tmp_path / "m.img"
    # the meter runs once with nobody watching: its first events go unseen
    finish(start_sim("--broker", broker.addr, "--secrets", sec, "--flash", flash,
                     "--credit", 1000, "--hours", 0.001, "--speed", 1, "--json"))
    watch = subprocess.Popen([sys.executable, str(ROOT / "tools" / "meterctl.py"), "--broker",
                              broker.addr, "--registry", str(reg), "watch", "m1",
                              "--seconds", "14"], stdout=subprocess.PIPE, text=True)
    time.sleep(1)
    forger = Forger(broker.addr)
    # the meter is off: only the forger answers
    t = meterctl(broker.addr, reg, "topup", "m1", 100, "--wait", 3)
    assert t.returncode == 1 and "123456789" not in t.stdout, t.stdout
    assert "status=pending" in t.stdout, t.stdout
    # the journal took in the forged `topup` event for this vend: still pending
    v = meterctl(broker.addr, reg, "vends", "m1")
    assert "status=pending" in v.stdout and "applied" not in v.stdout, v.stdout
    # odd payloads on the meter's topics, then a sealed one replayed onto another topic
    for odd in (b"[1, 2]", b'"x"', b"5", b"null", b"\xff\xfe", b"{}", b'{"seq": "1"}'):
        forger.pub("events", odd)
        forger.pub("telemetry", odd)
    p = start_sim("--broker", broker.addr, "--secrets", sec, "--flash", flash,
                  "--hours", 0.002, "--speed", 1, "--json")
    r = finish(p)
    time.sleep(1)
    out = watch.communicate(timeout=30)[0]
    forger.close()
    lines = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    real = [x["msg"] for x in lines if x.get("topic") == "events" and "msg" in x]
    rejected = [x for x in lines if "rejected" in x]
    # the pending vend landed once, from the meter itself
    assert r.last["credit"] == 1100
    fate = meterctl(broker.addr, reg, "vend", t.stdout.splitlines()[0].split("=")[1])
    assert "status=applied" in fate.stdout, fate.stdout
    # watch printed the real events after every forgery, and none of the forged ones
    assert real and all(e["seq"] < 100 for e in real), real
    assert real[-1]["seq"] == max(e["seq"] for e in real)
    assert len(rejected) >= 14, rejected[:3]
    first_gap = [x["gap"] for x in lines if "gap" in x]
    assert first_gap and first_gap[0][0] == 1, lines[:5]      # its first seq was not 1
    seen = json.loads(reg.read_text())["meters"]["m1"]["seen"]
    assert seen == real[-1]["seq"]
    print("forgery: %d forged messages tried, 0 believed; %d shown as rejected"
          % (forger.tried, len(rejected)))
