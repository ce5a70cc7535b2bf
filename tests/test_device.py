"""The device lane: main.py as a board runs it (tests/device.py), against a real
Mosquitto, and the field failures it found (issue 10)."""

import json
import sys
import threading
import time

import pytest

from conftest import ROOT
from device import Device, need_shared
from test_mqtt import Listener, meterctl, provision


def wait_for(cond, timeout=30, step=0.2):
    end = time.time() + timeout
    while time.time() < end:
        v = cond()
        if v:
            return v
        time.sleep(step)
    return cond()


@pytest.mark.parametrize("umqtt", ["1.3.4", "1.7.0", "1.8.0"])
def test_the_device_meters_syncs_and_answers(broker, tmp_path, umqtt):
    """End to end on the 32-bit interpreter with each umqtt.simple a board may
    run: telemetry arrives, a signed top-up lands once, the console answers."""
    reg, sec = provision(broker.addr, tmp_path, pin="2468")
    dev = Device(tmp_path / "dev", umqtt=umqtt, pulses_per_s=4)
    dev.provision(json.loads(sec.read_text()), broker.addr)
    dev.run("from firmware.settings import Settings\nimport boards.esp32_devkit_bl0937 as B\n"
            "Settings(B.settings_flash(), {}).save({'telemetry_s': 2})\n")
    hear = Listener(broker.addr)
    try:
        dev.boot()
        assert wait_for(lambda: hear.of("telemetry"), 30), dev.report()
        r = meterctl(broker.addr, reg, "topup", "m1", 700, "--ref", "DEV-1")
        assert r.returncode == 0 and "ok" in r.stdout, r.stdout + r.stderr
        again = meterctl(broker.addr, reg, "topup", "m1", 700, "--ref", "DEV-1")
        assert again.returncode == 0 and "status=applied" in again.stdout
        st = dict(x.split("=", 1) for x in dev.cmd("status") if "=" in x)
        assert st["topups"] == "700" and st["mqtt"] == "connected", st
        ev = wait_for(lambda: [e for e in hear.of("events") if e["event"] == "topup"])
        assert len(ev) == 1 and ev[0]["value"] == 700
        assert wait_for(lambda: [t for t in hear.of("telemetry") if t["pulses"] > 0])
        rep = dev.report()
        assert dev.alive() and rep["resets"] == [] and rep["wdt_max_gap_ms"] < 1000, rep
    finally:
        hear.close()
        dev.stop()


def booted(tmp_path, broker=None, secrets=None, settings=None, pin="2468", **world):
    """A provisioned device, powered on; returns (registry, device)."""
    reg = None
    dev = Device(tmp_path / "dev", **world)
    if broker is not None:
        reg, sec = provision(broker.addr, tmp_path, pin=pin)
        dev.provision(dict(json.loads(sec.read_text()), **(secrets or {})), broker.addr)
    elif pin:
        dev.provision({"pin": pin})
    if settings:
        dev.run("from firmware.settings import Settings\nimport boards.esp32_devkit_bl0937 "
                "as B\nSettings(B.settings_flash(), {}).save(%r)\n" % settings)
    dev.boot()
    return reg, dev


def status(dev):
    return dict(x.split("=", 1) for x in dev.cmd("status") if "=" in x)


def healthy(dev, max_gap_ms=1000):
    """Still running, never reset, and no loop turn longer than max_gap_ms."""
    rep = dev.report()
    assert dev.alive(), dev.stderr_tail()
    assert rep.get("resets") == [] and rep["wdt_max_gap_ms"] < max_gap_ms, rep
    return rep


def test_console_garbage_partial_utf8_and_slow_bytes(tmp_path):
    """Bytes are bytes: a lone UTF-8 lead byte neither crashes the loop nor
    makes it wait for the rest of a character."""
    _, dev = booted(tmp_path)
    try:
        dev.send(b"\xc3x\r")
        assert dev.read_until(b"> ").endswith(b"> ")
        dev.send(bytes(range(256)) + b"\r")
        dev.read_until(b"error: ")
        dev.send(b"\xc3")             # the rest of the character never comes
        time.sleep(2.5)
        dev.send(b"\r")
        dev.drain(1)
        dev.buf = b""
        assert status(dev)["pin"] == "set"
        healthy(dev)
    finally:
        dev.stop()


def test_repl_reaches_a_maintenance_repl_that_stays(tmp_path):
    """`repl` resets into maintenance mode: no watchdog, no meter loop; the
    REPL outlives the watchdog's timeout. A power cut ends maintenance."""
    _, dev = booted(tmp_path)
    try:
        assert dev.cmd("login 2468")[-1] == "ok"
        dev.send(b"repl\r")
        assert wait_for(lambda: dev.report().get("resets") == ["machine.reset"], 10)
        assert b"maintenance mode" in dev.boot(wait_for=b">>> ", power_on=False)
        time.sleep(9)                                   # longer than the 8 s watchdog
        dev.send(b"print(6 * 7)\r")
        assert b"42" in dev.read_until(b">>> ")
        assert "wdt_timeout_ms" not in dev.report() and dev.alive()
        dev.boot(power_on=True)                         # power cut: metering again
        assert status(dev)["pin"] == "set"
        assert dev.report()["wdt_timeout_ms"] == 8000
    finally:
        dev.stop()


def test_reconnects_across_the_ticks_wrap(broker, tmp_path):
    """A failure just before ticks_ms wraps (every 2**30 ms on a board) must
    not stop reconnecting: here the broker is down at boot, 3 s before the wrap."""
    broker.stop()
    reg, dev = booted(tmp_path, broker, ticks_start=(1 << 30) - 3000)
    try:
        time.sleep(6)
        broker.start()
        assert wait_for(lambda: status(dev)["mqtt"] == "connected", 30), status(dev)
        st = status(dev)
        assert st["mqtt_error"] == "none"
        log = dev.cmd("log 20")
        assert any("kind=mqtt_error" in x and "OSError" in x for x in log), log
        healthy(dev)
    finally:
        dev.stop()


def test_late_wifi_connects_once_then_clock_and_mqtt(broker, tmp_path):
    """The WiFi associates 12 s after boot: WLAN.connect() is called once
    (a second call would start the association over), then NTP sets the clock
    and MQTT connects."""
    reg, dev = booted(tmp_path, broker, wifi={"assoc_ms": 12000})
    try:
        assert status(dev)["clock"] == "unsynced"
        assert wait_for(lambda: status(dev)["clock"] == "synced", 30)
        st = status(dev)
        assert st["time"][:4] == time.strftime("%Y", time.gmtime())
        assert wait_for(lambda: status(dev)["mqtt"] == "connected", 20)
        rep = healthy(dev)
        assert rep["wifi_connect_calls"] == 1
    finally:
        dev.stop()


def test_wifi_settings_apply_without_a_reboot(broker, tmp_path):
    """`set wifi_ssid`/`wifi_pass` join the new network at once (the board
    file's WiFi was the one at boot); MQTT comes back over it, no reset."""
    reg, dev = booted(tmp_path, broker, wifi={"assoc_ms": 0})
    try:
        assert wait_for(lambda: status(dev)["mqtt"] == "connected", 20)
        assert dev.report()["wifi_ssid"] != "flat-9"
        assert dev.cmd("login 2468")[-1] == "ok"
        assert dev.cmd("set wifi_ssid flat-9")[-2:] == ["wifi_ssid=flat-9", "ok"]
        assert dev.cmd("set wifi_pass pw-of-flat-9")[-2:] == ["wifi_pass=***", "ok"]
        rep = dev.report()
        assert rep["wifi_ssid"] == "flat-9" and rep["wifi_connect_calls"] == 3
        assert wait_for(lambda: status(dev)["mqtt"] == "connected", 20)
        healthy(dev)
    finally:
        dev.stop()


def test_ntp_retries_then_resyncs_and_never_waits(tmp_path):
    """The time source the shell polls: retried while the server is silent,
    then asked again periodically (a crystal drifts 1-2 s a day). No poll
    waits for the network (micropython-lib's ntptime held the loop for its
    whole timeout), and only the answer to the meter's own request counts."""
    dev = Device(tmp_path / "dev", wifi={"assoc_ms": 0}, ntp={"offset_s": 3600,
                                                             "down": True})
    dev.ntp.forge = True
    threading.Timer(1.5, lambda: setattr(dev.ntp, "silent", False)).start()
    out = dev.run(
        "import time\nfrom hal.esp32 import net\n"
        "net.NTP_RETRY_MS, net.NTP_RESYNC_MS, net.NTP_TIMEOUT_MS = 300, 1000, 200\n"
        "w = net.Wifi('flat', 'pw')\nsrc = net.NtpTime(w, '127.0.0.1', %d)\n"
        "got = []\nlongest = 0\nt0 = time.ticks_ms()\n"
        "while time.ticks_diff(time.ticks_ms(), t0) < 4100:\n"
        "    a = time.ticks_ms()\n    t = src.poll()\n"
        "    longest = max(longest, time.ticks_diff(time.ticks_ms(), a))\n"
        "    if t is not None:\n        got.append(t)\n"
        "    time.sleep_ms(10)\n"
        "import utime\nprint(len(got), got[0] - int(utime.time()), longest)\n"
        % dev.ntp.port)
    dev.stop()
    n, off, longest = map(int, out.split())
    assert dev.ntp.requests >= 5                 # retried while silent
    assert n in (2, 3) and abs(off - 3600) <= 4  # the true answer, then each second
    assert longest < 100, longest                # the old client waited 500 ms here


def test_the_c3_board_imports_its_pulse_driver(tmp_path):
    """An ESP32-C3 has no PCNT: machine.Counter does not exist there, and the
    C3 board counts pulses by interrupt instead."""
    dev = Device(tmp_path / "dev", chip="esp32c3")
    dev.board["board"] = "esp32c3_devkit"
    dev.provision({"pin": "2468"})
    try:
        dev.boot()
        assert status(dev)["pin"] == "set"
        healthy(dev)
    finally:
        dev.stop()


def test_slow_dns_runs_beside_the_loop_once(broker, tmp_path):
    """A board's getaddrinfo has no timeout (lwIP retries each DNS server for
    seconds): a 10 s lookup must not stall the loop past the watchdog, and the
    broker's name is looked up once."""
    reg, dev = booted(tmp_path, broker, secrets={"mqtt_host": "broker.test"},
                      dns={"hosts": {"broker.test": "127.0.0.1", "pool.ntp.org": "127.0.0.1"},
                           "delay_ms": 10000})
    try:
        assert status(dev)["mqtt"] == "offline"
        assert wait_for(lambda: status(dev)["mqtt"] == "connected", 30)
        assert dev.cmd("relay")[-1] == "ok"
        rep = healthy(dev)
        assert rep["dns_lookups"]["broker.test"] == 1, rep
    finally:
        dev.stop()


@pytest.mark.parametrize("rtt_ms", [100, 800])     # a LAN and a bad mobile link
def test_slow_path_stays_connected_and_delivers_once(broker, tmp_path, rtt_ms):
    """Through a path with a real round-trip time the meter stays connected
    (QoS 1 acknowledgements are matched as they come, nothing waits inline),
    delivers every event and telemetry snapshot once, and no loop turn takes
    a second."""
    from netproxy import DelayProxy
    proxy = DelayProxy(broker.port, rtt_ms)
    hear = Listener(broker.addr)
    reg, dev = booted(tmp_path, broker, secrets={"mqtt_port": proxy.port},
                      settings={"telemetry_s": 1}, pulses_per_s=2)
    try:
        assert wait_for(lambda: status(dev)["mqtt"] == "connected", 20)
        t0 = time.time()
        for i in range(10):                  # events: a login and a logout each
            dev.cmd("login 2468")
            dev.cmd("logout")
            time.sleep(1.5)
        minutes = (time.time() - t0) / 60
        st = status(dev)
        n_events = int(st["events"])
        got = wait_for(lambda: len({e["seq"] for e in hear.of("events")}) >= n_events, 20)
        events = [e["seq"] for e in hear.of("events")]
        tele = [t["tseq"] for t in hear.of("telemetry")]
        assert got and sorted(set(events)) == list(range(1, n_events + 1)), events
        assert len(events) == len(set(events)), "duplicate events"
        assert len(tele) == len(set(tele)) and tele == list(range(1, len(tele) + 1)), tele
        assert proxy.accepted == 1 and st["mqtt"] == "connected", (proxy.accepted, st)
        healthy(dev)
        fig = ROOT / "build" / "device-rtt.json"
        data = json.loads(fig.read_text()) if fig.exists() else {}
        data[str(rtt_ms)] = {"connections": proxy.accepted,
                             "msgs_per_min": round((len(events) + len(tele)) / minutes)}
        fig.parent.mkdir(exist_ok=True)
        fig.write_text(json.dumps(data, indent=1, sort_keys=True))
    finally:
        hear.close()
        dev.stop()
        proxy.close()


def test_relay_opens_within_a_pulse_of_zero_credit_on_a_silent_network(tmp_path):
    """A broker that never answers and an NTP server that never answers must
    not hold the relay decision: at 10 kW (a pulse every 225 ms) the meter
    bills at most one pulse after credit reaches zero. The contacts of the
    stand-in latching relay gate the pulses (tests/esp32fake/machine.py);
    tools/bench_overshoot.py gives the figures at 3, 10 and 20 kW."""
    sys.path.insert(0, str(ROOT / "tools"))
    import bench_overshoot
    from device import need_shared
    need_shared()
    broker = bench_overshoot.silent_broker()
    try:
        r = bench_overshoot.run_one(tmp_path, 10, broker)
    finally:
        broker.close()
    assert r["relay"] == "open" and r["mqtt"] == "connecting", r
    assert 0 <= r["past_zero"] <= 1, r
    assert r["credit"] <= 0


def test_the_hardware_selftest_on_a_new_board(broker, tmp_path):
    """hal/esp32/selftest.py, the acceptance test a technician runs with one
    jumper wire: on a new board (blank meter partition, no broker yet) it
    writes, reads back and erases a block and leaves the partition blank; the
    missing jumper and broker fail by name. Provisioned, with the jumper from
    PIN_TEST_OUT to the pulse input, every item passes; on the C3 the pulses
    arrive by interrupt."""
    need_shared()
    run = "import hal.esp32.selftest as t\nt.run()\n"
    dev = Device(tmp_path / "new", wifi={"assoc_ms": 0})
    out = dev.run(run).splitlines()
    assert "pulses: FAIL (0 of 100 counted (jumper GPIO32 to GPIO25))" in out, out
    assert "relay: PASS (closed, then open: two clicks)" in out
    assert "flash: PASS (block 25 written, read back, erased)" in out
    assert "broker: FAIL (no broker provisioned)" in out and out[-1] == "selftest: FAIL"
    img = (tmp_path / "new" / "flash.img").read_bytes()
    assert img.count(0xFF) == len(img)              # nothing left behind
    for board, chip, jumper in (("esp32_devkit_bl0937", "esp32", [32, 25]),
                                ("esp32c3_devkit", "esp32c3", [6, 4])):
        reg, sec = provision(broker.addr, tmp_path / board, pin="2468")
        dev = Device(tmp_path / board / "dev", wifi={"assoc_ms": 0}, jumper=jumper, chip=chip)
        dev.board["board"] = board
        dev.provision(json.loads(sec.read_text()), broker.addr)
        out = dev.run(run).splitlines()
        assert out[0].startswith("pulses: PASS (100 of 100"), (board, out)
        assert out[2] == "flash: PASS (26 blocks read; holds data, so not written)", out
        assert out[3] == "wifi: PASS" and out[4].startswith("broker: PASS"), out
        assert out[-1] == "selftest: PASS", out
