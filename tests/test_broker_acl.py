"""`meterctl provision --broker-dir`: the Mosquitto password and ACL files it
writes, used by a real Mosquitto. A real simulated meter and the head-end
work through them; meter A's login then tries what it must not, and every try
is refused, while the same clients' allowed traffic gets through (so a refusal
is not a dead broker)."""

import json
import threading
import time

import paho.mqtt.client as mqtt

from conftest import Broker
from test_mqtt import finish, meterctl, start_sim

WAIT_S = 1.0


class Login:
    """A paho client with a login, recording what it receives."""

    def __init__(self, broker, user, password, subs=()):
        self.got = []
        self.lock = threading.Lock()
        self.granted = []
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                             client_id="acl-%s-%d" % (user, time.monotonic_ns()))
        self.c.username_pw_set(user, password)
        self.c.on_message = self._on
        self.c.on_subscribe = lambda c, u, mid, codes, p=None: self.granted.extend(
            int(getattr(x, "value", x)) for x in codes)
        host, port = broker.split(":")
        rc = []
        self.c.on_connect = lambda c, u, f, code, p=None: rc.append(code)
        self.c.connect(host, int(port), keepalive=10)
        self.c.loop_start()
        end = time.time() + 5
        while not rc and time.time() < end:
            time.sleep(0.02)
        self.refused = not rc or rc[0].is_failure
        for t in subs:
            self.c.subscribe(t, qos=1)
        time.sleep(0.3)

    def _on(self, client, userdata, msg):
        with self.lock:
            self.got.append((msg.topic, msg.payload.decode()))

    def saw(self, payload):
        with self.lock:
            return any(p == payload for _, p in self.got)

    def publish(self, topic, payload):
        self.c.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


def test_each_meter_only_its_own_topics_and_the_head_end_only_its_own(tmp_path):
    reg, bdir = tmp_path / "headend.json", tmp_path / "broker"
    b = Broker(tmp_path)
    secrets = {}
    for mid in ("A", "B"):
        out = tmp_path / ("%s.json" % mid)
        r = meterctl(b.addr, reg, "provision", "--id", mid, "--out", out, "--broker-dir", bdir)
        assert r.returncode == 0 and "broker_files=" in r.stdout, r.stdout + r.stderr
        secrets[mid] = json.loads(out.read_text())
    again = meterctl(b.addr, reg, "provision", "--id", "C", "--out", tmp_path / "C.json",
                     "--broker-dir", bdir, "--mqtt-user", "A")
    assert again.returncode == 2 and "another's login" in again.stderr
    registry = json.loads(reg.read_text())
    assert "mqtt_pass" not in registry["meters"]["A"]          # only the hash is kept
    assert secrets["A"]["mqtt_pass"] not in (bdir / "passwd").read_text()
    head = registry["headend"]
    b.conf.write_text(b.conf.read_text().replace("allow_anonymous true", "allow_anonymous false")
                      + "password_file %s\nacl_file %s\n" % (bdir / "passwd", bdir / "acl"))
    b.start()
    logins = []
    try:
        # a real meter and the head-end (meterctl, its login from the registry) get through
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        headend = Login(b.addr, head["mqtt_user"], head["mqtt_pass"],
                        ["meters/+/%s" % t for t in ("status", "events", "telemetry", "reply")])
        logins.append(headend)
        p = start_sim("--broker", b.addr, "--secrets", tmp_path / "A.json", "--hours", 0.004,
                      "--speed", 1, "--credit", 1000, "--json", "--start", now)
        time.sleep(2)
        top = meterctl(b.addr, reg, "topup", "A", 500, "--ref", "ACL-1")
        sim = finish(p)
        assert top.returncode == 0 and "credit=1500" in top.stdout, top.stdout + top.stderr
        assert sim.last["mqtt"]["connects"] == 1 and sim.last["mqtt"]["failures"] == 0
        assert headend.saw("online")                          # A's retained status

        a = Login(b.addr, secrets["A"]["mqtt_user"], secrets["A"]["mqtt_pass"],
                  ["meters/A/cmd", "meters/B/telemetry", "meters/B/cmd", "meters/#"])
        bb = Login(b.addr, secrets["B"]["mqtt_user"], secrets["B"]["mqtt_pass"],
                   ["meters/B/cmd", "releases/#"])
        logins += [a, bb]
        # allowed, each way: the broker delivers
        a.publish("meters/A/telemetry", "a-tele")
        bb.publish("meters/B/telemetry", "b-tele")
        headend.publish("meters/A/cmd", "h-cmd-a")
        headend.publish("meters/B/cmd", "h-cmd-b")
        headend.publish("releases/9.9.9/head", "h-release")     # firmware for every meter
        time.sleep(WAIT_S)
        assert headend.saw("a-tele") and headend.saw("b-tele")
        assert a.saw("h-cmd-a") and bb.saw("h-cmd-b") and bb.saw("h-release")
        # what A's login must not do
        a.publish("meters/B/cmd", "forged-cmd")                # command meter B
        a.publish("meters/B/telemetry", "forged-tele")         # speak as meter B
        a.publish("meters/B/status", "forged-status")
        a.publish("meters/A/cmd", "self-cmd")                  # speak as the head-end
        a.publish("releases/9.9.9/0", "forged-release")         # offer firmware to B
        a.publish("meters/A/events", "a-event")                # (allowed: a control)
        time.sleep(WAIT_S)
        tries = {
            "publish a command to B": not bb.saw("forged-cmd"),
            "publish B's telemetry": not headend.saw("forged-tele"),
            "publish B's status": not headend.saw("forged-status"),
            "publish as the head-end (a command to itself)": not a.saw("self-cmd"),
            "read B's telemetry (meters/B/telemetry, meters/#)": not a.saw("b-tele"),
            "read B's commands": not a.saw("h-cmd-b"),
            "publish a firmware release": not bb.saw("forged-release"),
            "log in without a password": Login(b.addr, "", "").refused,
            "log in as B with A's password": Login(b.addr, "B", secrets["A"]["mqtt_pass"])
            .refused,
        }
        assert headend.saw("a-event")
        print("\nACL: tried %d, refused %d" % (len(tries), sum(tries.values())))
        for what, refused in tries.items():
            print("  %-52s %s" % (what, "refused" if refused else "ALLOWED"))
        assert all(tries.values()), tries
    finally:
        for x in logins:
            x.close()
        b.stop()
