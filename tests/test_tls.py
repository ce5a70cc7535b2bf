"""MQTT over TLS, against a real Mosquitto with TLS listeners on loopback and
a CA and certificates made by the test (tests/certs.py). The meter is the
real simulator on the unix port (its mbedtls does the handshake); meterctl is
paho on CPython's ssl."""

import json
import socket
import time

import pytest

from certs import make
from conftest import Broker
from test_mqtt import Listener, finish, meterctl, start_sim

# the broker's certificate each listener shows ("client" asks for a client certificate)
LISTENERS = ("good", "expired", "wrong_host", "client")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    certs = make(d)
    ports = {n: free_port() for n in LISTENERS}
    extra = ""
    for n in LISTENERS:
        crt, key = certs["good" if n == "client" else n]
        extra += ("listener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\n"
                  % (ports[n], certs["ca"][0], crt, key))
        if n == "client":
            extra += "require_certificate true\n"
        if n == "good":
            extra += "tls_version tlsv1.2\n"     # what the issue asks the meter to speak
    b = Broker(d, extra).start()
    for n in LISTENERS:
        socket.create_connection(("127.0.0.1", ports[n]), 2).close()
    yield {"certs": certs, "ports": ports, "broker": b, "dir": d}
    b.stop()


def addr(tls, listener):
    return "localhost:%d" % tls["ports"][listener]


def now_iso():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())    # the meter's time source


def provision(tls, tmp_path, mid, ca="ca"):
    reg, sec = tmp_path / "headend.json", tmp_path / ("%s.json" % mid)
    r = meterctl(addr(tls, "good"), reg, "--ca", tls["certs"][ca][0], "provision", "--id", mid,
                 "--out", sec)
    assert r.returncode == 0, r.stderr
    s = json.loads(sec.read_text())
    assert s["mqtt_tls"] == 1 and "BEGIN CERTIFICATE" in s["mqtt_ca"]
    return reg, sec


def test_meter_over_tls_reports_and_takes_a_signed_topup(tls, tmp_path):
    reg, sec = provision(tls, tmp_path, "t1")
    hear = Listener(addr(tls, "good"), client_id="tls-headend-%d" % time.time_ns(),
                    ca=tls["certs"]["ca"][0])
    p = start_sim("--broker", addr(tls, "good"), "--secrets", sec, "--hours", 0.005,
                  "--speed", 1, "--credit", 1000, "--json", "--start", now_iso(),
                  "--set", "telemetry_s=10")
    time.sleep(3)
    ok = meterctl(addr(tls, "good"), reg, "--ca", tls["certs"]["ca"][0], "topup", "t1", 500)
    r = finish(p)
    hear.close()
    assert ok.returncode == 0 and "credit=1500" in ok.stdout, ok.stdout + ok.stderr
    assert r.last["mqtt"]["connects"] == 1 and r.last["mqtt_error"] == ""
    assert "online" in hear.of("status")
    assert [e["event"] for e in hear.of("events")][:1] == ["boot"]
    assert hear.of("telemetry") and hear.of("telemetry")[-1]["credit"] == 1500
    # meterctl without the CA does not talk to the TLS listener at all
    plain = meterctl(addr(tls, "good"), reg, "read", "t1", timeout=30)
    assert plain.returncode != 0 and "did not accept the connection" in plain.stderr


@pytest.mark.parametrize("listener,ca,why", [
    ("good", "other_ca", "TLS wrong CA"),
    ("expired", "ca", "TLS cert expired"),
    ("wrong_host", "ca", "TLS wrong host"),
])
def test_a_broker_certificate_the_meter_must_not_trust_is_refused(tls, tmp_path, listener,
                                                                  ca, why):
    """Status and the event log say why; the meter never got as far as MQTT."""
    _, sec = provision(tls, tmp_path, "bad", ca=ca)
    r = finish(start_sim("--broker", addr(tls, listener), "--secrets", sec, "--hours", 0.0015,
                         "--speed", 1, "--json", "--start", now_iso()))
    assert r.last["mqtt"]["connects"] == 0 and r.last["mqtt"]["failures"] >= 1
    assert r.last["mqtt_error"] == why
    assert {"event": "mqtt_error", "detail": why} in \
        [{k: e.get(k) for k in ("event", "detail")} for e in r.events]


def test_a_tls_meter_never_falls_back_to_plain_text(tls, tmp_path):
    """Pointed at a plain listener, the meter's first bytes are a TLS hello:
    the broker never sees its CONNECT, its login or its topics."""
    _, sec = provision(tls, tmp_path, "t2")
    plain = "localhost:%d" % tls["broker"].port
    hear = Listener(plain.replace("localhost", "127.0.0.1"), "meters/t2/#",
                    client_id="plain-%d" % time.time_ns())
    r = finish(start_sim("--broker", plain, "--secrets", sec, "--hours", 0.0015, "--speed", 1,
                         "--json", "--start", now_iso()))
    time.sleep(0.3)
    hear.close()
    assert r.last["mqtt"]["connects"] == 0 and r.last["mqtt"]["failures"] >= 1
    assert r.last["mqtt_error"].startswith("TLS"), r.last["mqtt_error"]
    assert hear.msgs == []


def test_a_ca_file_that_does_not_match_its_pin_is_not_used(tls, tmp_path):
    _, sec = provision(tls, tmp_path, "t3")
    img = tmp_path / "meter.img"
    first = finish(start_sim("--broker", addr(tls, "good"), "--secrets", sec, "--flash", img,
                             "--hours", 0.001, "--speed", 1, "--json", "--start", now_iso()))
    assert first.last["mqtt"]["connects"] == 1
    # someone swaps in their own CA beside the image (a board: /mqtt_ca.der)
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding
    other = x509.load_pem_x509_certificate(tls["certs"]["other_ca"][0].read_bytes())
    (tmp_path / "meter.img.ca").write_bytes(other.public_bytes(Encoding.DER))
    r = finish(start_sim("--broker", addr(tls, "good"), "--flash", img, "--hours", 0.001,
                         "--speed", 1, "--json", "--start", now_iso()))
    assert r.last["mqtt"]["connects"] == 0 and r.last["mqtt_error"] == "TLS CA mismatch"


def test_meterctl_with_a_client_certificate(tls, tmp_path):
    """A listener that wants client certificates: meterctl gets in with
    --cert/--key, not without; a CA that did not sign the broker's is refused."""
    reg = tmp_path / "headend.json"
    ca, (crt, key) = tls["certs"]["ca"][0], tls["certs"]["client"]
    base = (addr(tls, "client"), reg, "--ca", ca)
    ok = meterctl(*base, "--cert", crt, "--key", key, "watch", "--seconds", 2)
    assert ok.returncode == 0, ok.stderr
    no = meterctl(*base, "watch", "--seconds", 2)
    assert no.returncode == 1 and "never accepted" in no.stderr, no.stderr
    wrong = meterctl(addr(tls, "good"), reg, "--ca", tls["certs"]["other_ca"][0],
                     "watch", "--seconds", 0.5)
    assert wrong.returncode != 0 and "certificate verify failed" in wrong.stderr, wrong.stderr
    half = meterctl(*base, "--cert", crt, "watch", "--seconds", 0.5)
    assert half.returncode == 2 and "--cert and --key go together" in half.stderr


def wait_kv(c, line, key, value, timeout=20):
    end = time.time() + timeout
    while True:
        got = c.kv(line)
        if got.get(key) == value or time.time() > end:
            return got
        time.sleep(0.5)


def test_mqtt_settings_apply_without_a_reboot(tls, tmp_path):
    """A technician points a meter at another listener with `set`: the meter
    drops the old connection and makes the new one at once, no reboot."""
    from consolepty import PtyConsole
    _, sec = provision(tls, tmp_path, "t4")
    c = PtyConsole("--broker", addr(tls, "expired"), "--secrets", sec, "--pin", "2468",
                   "--start", now_iso())
    try:
        assert wait_kv(c, "status", "mqtt_error", "TLS cert expired")["mqtt"] != "connected"
        c.ok("login 2468")
        assert c.ok("set mqtt_port %d" % tls["ports"]["good"]) == \
            ["mqtt_port=%d" % tls["ports"]["good"]]
        st = wait_kv(c, "status", "mqtt", "connected")
        assert st["mqtt"] == "connected" and st["mqtt_error"] == "none", st
        boots = [ln for ln in c.ok("log 50") if "kind=boot " in ln]
        assert len(boots) == 1, boots          # the same boot: nothing restarted
    finally:
        c.close()
    # a meter that had no broker at boot has no MQTT stack running: it says so
    c = PtyConsole("--pin", "2468")
    try:
        c.ok("login 2468")
        assert c.ok("set mqtt_host broker.example") == ["mqtt_host=broker.example",
                                                        "reboot=needed"]
    finally:
        c.close()
