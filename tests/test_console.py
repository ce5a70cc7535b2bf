"""The technician console, driven through a pty on the unix-port firmware."""

import random
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT
from consolepty import PtyConsole, stable


@pytest.fixture
def img(tmp_path):
    return tmp_path / "meter.img"


def test_help_status_and_reads_need_no_login(img):
    c = PtyConsole("--flash", img, "--pin", "2468")
    assert b"type help" in c.banner
    helps = c.ok("help")
    names = [h.split()[0] for h in helps]
    for name in ("status", "login", "logout", "topup", "relay", "set", "log", "clear",
                 "selftest", "reboot", "factory-reset", "repl", "config", "tariff"):
        assert name in names
    st = c.kv("status")
    assert st["credit"] == "5000" and st["relay"] == "closed" and st["session"] == "anyone"
    assert st["pin"] == "set" and st["state"] == "ok"
    assert c.kv("energy") == {"energy_wh": "0.000"}
    assert c.kv("credit") == {"credit": "5000"}
    tf = c.kv("tariff")
    assert tf["price_per_kwh"] == "2000" and '"kind": "flat"' in tf["active"]
    assert c.kv("relay") == {"relay": "closed", "relay_state": "closed", "relay_mode": "auto"}
    assert c.kv("config")["mqtt_port"] == "1883"
    assert "technician login required" == c.error("topup 100 X")
    assert "technician login required" == c.error("relay open")
    assert c.close() == 0


def test_technician_commands_are_refused_without_a_pin(img):
    c = PtyConsole("--flash", img)
    assert "no technician PIN set" in c.error("topup 100 X")
    assert "no technician PIN set" in c.error("login 1234")
    assert c.kv("status")["pin"] == "unset"
    c.close()


def test_login_lockout_doubles_and_survives_reboot(img):
    c = PtyConsole("--flash", img, "--pin", "2468", "--speed", "20")
    assert c.error("login 1111") == "wrong PIN"
    assert c.error("login 2222") == "wrong PIN"
    assert c.error("login 3333") == "wrong PIN; locked out for 30 s"
    assert "locked out" in c.error("login 2468")        # right PIN, still locked
    assert c.kv("alarms") == {"alarms": "lockout"}
    c.close()
    # pulling the power does not reset the lockout
    c = PtyConsole("--flash", img, "--speed", "20")
    assert "locked out" in c.error("login 2468")
    time.sleep(1.8)                                   # 36 virtual seconds
    assert c.error("login 0000") == "wrong PIN; locked out for 60 s"   # doubled
    time.sleep(3.3)
    assert c.ok("login 2468") == ["session=technician"]
    log = c.ok("log 20")
    kinds = [line.split()[2] for line in log]
    assert kinds.count("kind=login_failed") == 2 and kinds.count("kind=lockout") >= 3
    assert kinds[-1] == "kind=login"
    c.close()


def test_topup_from_console_survives_a_power_cut_right_after_ok(img):
    c = PtyConsole("--flash", img, "--pin", "2468", "--credit", "100")
    c.ok("login 2468")
    assert c.ok("topup 2500 TX-77") == ["credit=2600"]
    assert "duplicate" in c.error("topup 2500 TX-77")
    assert "AMOUNT must be" in c.error("topup -5 TX-78")
    assert "AMOUNT must be" in c.error("topup 12.5 TX-78")
    assert "usage: topup" in c.error("topup 5")
    assert c.close(signal.SIGKILL) == -signal.SIGKILL     # the plug is pulled
    c = PtyConsole("--flash", img)
    assert c.kv("credit") == {"credit": "2600"}
    assert "technician login required" in c.error("topup 2500 TX-77")
    c.close()


def test_relay_override_is_logged_and_persists(img):
    c = PtyConsole("--flash", img, "--pin", "2468", "--load", "500")
    c.ok("login 2468")
    assert c.kv("relay open") == {"relay": "open", "relay_state": "open", "relay_mode": "open"}
    assert c.kv("status")["relay"] == "open"
    assert "usage" in c.error("relay sideways")
    c.close()
    c = PtyConsole("--flash", img, "--load", "500")
    assert c.kv("relay") == {"relay": "open", "relay_state": "open",
                             "relay_mode": "open"}                      # from flash
    c.ok("login 2468")
    # back to auto: the supply waits for the customer's button (READY)
    assert c.kv("relay auto") == {"relay": "open", "relay_state": "ready",
                                  "relay_mode": "auto"}
    kinds = " ".join(c.ok("log 10"))
    assert "detail=open:manual" in kinds and "kind=relay_state value=0 detail=ready" in kinds
    c.ok("set reconnect auto")
    assert c.kv("relay")["relay"] == "closed"
    c.close()


def test_settings_validation_and_pin_change(img):
    c = PtyConsole("--flash", img, "--pin", "2468")
    c.ok("login 2468")
    assert c.ok("set wifi_ssid flat-12") == ["wifi_ssid=flat-12"]
    # no MQTT link at boot (no broker): the reply says a reboot starts it
    assert c.ok("set mqtt_pass s3cret") == ["mqtt_pass=***", "reboot=needed"]
    assert c.ok("set low_credit 700") == ["low_credit=700"]
    assert "must be 1..65535" in c.error("set mqtt_port 70000")
    assert "whole number" in c.error("set mqtt_port abc")
    assert "unknown setting" in c.error("set colour blue")
    assert "usage: set" in c.error("set wifi_ssid")
    assert "4 to 12 digits" in c.error("set pin 12")
    assert c.ok("set imp_per_kwh 1000") == ["imp_per_kwh=1000"]
    cfg = c.kv("config")
    assert cfg["wifi_ssid"] == "flat-12" and cfg["mqtt_pass"] == "***"
    assert cfg["mqtt_port"] == "1883" and cfg["imp_per_kwh"] == "1000"
    assert c.ok("set pin 13579") == ["pin=set"]
    c.ok("logout")
    assert c.error("login 2468") == "wrong PIN"
    assert c.ok("login 13579") == ["session=technician"]
    c.close()
    c = PtyConsole("--flash", img)
    assert c.kv("config")["low_credit"] == "700"
    c.close()


def test_selftest_clear_and_log(img):
    c = PtyConsole("--flash", img, "--pin", "2468")
    c.error("login 1111")
    c.error("login 1111")
    c.error("login 1111")
    c.close()
    c = PtyConsole("--flash", img, "--speed", "100")
    time.sleep(0.5)
    c.ok("login 2468")
    sel = c.kv("selftest")
    assert sel == {"ledger": "ok", "settings": "ok", "event_log": "ok", "relay": "ok"}
    assert c.kv("alarms") == {"alarms": "lockout"}       # kept across the reboot
    assert c.ok("clear") == ["cleared=lockout"]
    assert c.kv("alarms") == {"alarms": "none"}
    log = c.ok("log 3")
    assert len(log) == 3 and "kind=selftest value=1" in log[1]
    assert "N must be 1..100" in c.error("log 0")
    assert "N must be" in c.error("log x")
    c.close()


def test_reboot_and_factory_reset(img):
    c = PtyConsole("--flash", img, "--pin", "2468")
    c.ok("login 2468")
    c.ok("set wifi_ssid home")
    c.send(b"reboot\r")
    c.read_until(b"rebooting\r\nok\r\n")
    c.read_until(b"type help")
    c.read_until(b"> ")
    assert c.kv("status")["session"] == "anyone"
    c.ok("login 2468")
    c.ok("topup 900 R-1")
    first = c.ok("factory-reset")[0]
    code = first.split()[-1]
    assert first.startswith("confirm within 60 s")
    assert "wrong or expired" in c.error("factory-reset 99999")
    c.ok("factory-reset")
    assert "wrong or expired" in c.error("factory-reset " + code)   # old code is void
    code = c.ok("factory-reset")[0].split()[-1]
    assert "credit and energy kept" in c.ok("factory-reset " + code)[0]
    st = c.kv("status")
    assert st["pin"] == "unset" and st["session"] == "anyone" and st["credit"] == "5900"
    assert c.kv("config")["wifi_ssid"] == ""
    c.close()


def test_idle_timeout_ends_the_session(img):
    c = PtyConsole("--flash", img, "--pin", "2468", "--speed", "200")
    c.ok("login 2468")
    c.ok("set idle_timeout_s 30")
    time.sleep(0.5)          # 100 virtual seconds
    assert c.error("clear") == "technician login required"
    assert "kind=logout value=0 detail=idle" in " ".join(c.ok("log 2"))
    c.close()


def test_repl_leaves_the_firmware(img):
    c = PtyConsole("--flash", img, "--pin", "2468")
    c.ok("login 2468")
    c.send(b"repl\r")
    c.read_until(b"leaving to the REPL")
    assert c.proc.wait(timeout=10) == 0


def test_garbage_changes_nothing(img):
    c = PtyConsole("--flash", img, "--pin", "2468")
    before = (stable(c.kv("status")), c.kv("config"), c.ok("log 100"))
    rng = random.Random(1234)
    for _ in range(40):
        junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
        junk = junk.replace(b"\x04", b"")       # Ctrl-D ends the sim on a tty
        c.send(junk + b"\r")
    c.send(b"A" * 10240 + b"\r")
    c.send(b"status\x1b[A\x07\r")
    c.send(b"\x03")
    c.send(b"\r")
    # drain: everything so far has been answered with errors only
    c.send(b"credit\r")
    out = c.read_until(b"credit=5000\r\nok\r\n").decode(errors="replace")
    assert "error: line too long" in out
    assert "error: control characters or binary data in line" in out
    assert "error: cancelled" in out
    c.read_until(b"> ")
    for bad in ("bogus", "STATUSX", "login", "topup", "log 1 2", "relay open now"):
        c.error(bad)
    after = (stable(c.kv("status")), c.kv("config"), c.ok("log 100"))
    assert after == before
    c.close()


def test_console_over_a_pipe_for_scripts(img):
    p = subprocess.run([sys.executable, str(ROOT / "tools" / "sim.py"), "--console",
                        "--flash", str(img)], input="status\ncredit\nnope\n",
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert "credit=5000" in lines and lines.count("ok") == 2
    assert lines[-1] == "error: unknown command 'nope' (try help)"


def _bridge(a, b, stop):
    """A null-modem cable between two pty masters."""
    import os
    import select as sel
    while not stop.is_set():
        r, _, _ = sel.select([a, b], [], [], 0.1)
        for src in r:
            try:
                data = os.read(src, 4096)
            except OSError:
                return
            os.write(b if src == a else a, data)


def test_host_console_tool_over_a_serial_line(img):
    import os
    import pty
    import threading
    meter = PtyConsole("--flash", img, "--pin", "2468")
    host_master, host_slave = pty.openpty()
    port = os.ttyname(host_slave)
    stop = threading.Event()
    t = threading.Thread(target=_bridge, args=(meter.master, host_master, stop), daemon=True)
    t.start()
    try:
        tool = [sys.executable, str(ROOT / "tools" / "console.py"), "--port", port]
        r = subprocess.run(tool + ["--pin", "2468", "status", "topup 300 HOST-1", "credit"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "session=technician" in r.stdout and "credit=5300" in r.stdout
        assert r.stdout.count("\nok") + r.stdout.startswith("ok") >= 3
        r = subprocess.run(tool + ["topup 300 HOST-1"], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 1 and "error: technician login required" in r.stdout
        r = subprocess.run(tool, input="credit\nbogus\n", capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0 and "credit=5300\nok" in r.stdout
        assert "error: unknown command 'bogus'" in r.stdout
    finally:
        stop.set()
        t.join()
        os.close(host_slave)
        os.close(host_master)
        meter.proc.kill()
        meter.proc.wait()


def test_tariff_time_emergency_and_trip_commands(img):
    import json as _json
    c = PtyConsole("--flash", img, "--pin", "2468", "--start", "2026-11-30T10:00:00Z",
                   "--set", "emergency_credit=300", "--set", "emergency_threshold=9000")
    t = c.kv("time")
    assert t["time"].startswith("2026-11-30T10:00") and t["clock"] == "synced"
    assert c.error("time set 2026-12-01T00:00:00Z") == "technician login required"
    assert c.kv("emergency") == {"credit": "5300", "emergency": "300"}
    assert "already taken" in c.error("emergency")
    c.ok("login 2468")
    tou = {"version": 7, "activate": 0, "kind": "tou",
           "weekday": [[0, 1000], [600, 2500]], "weekend": [[0, 900]]}
    lines = dict(x.split("=", 1) for x in c.ok("tariff set " + _json.dumps(tou)))
    assert lines["price_per_kwh"] == "2500" and _json.loads(lines["active"])["version"] == 7
    assert "version must be above 7" in c.error("tariff set " + _json.dumps(tou))
    assert "not valid JSON" in c.error("tariff set {oops")
    assert "kind must be" in c.error('tariff set {"version": 9, "kind": "gas"}')
    later = dict(tou, version=8, activate=1798761600, weekday=[[0, 3000]])
    out = c.ok("tariff set " + _json.dumps(later))
    assert any(x.startswith("pending=") and '"version": 8' in x for x in out)
    assert "time must be" in c.error("time set tomorrow")
    assert c.kv("time set 2026-12-01T00:00:00Z")["time"] == "2026-12-01T00:00:00Z"
    assert c.error("relay reset") == "the relay is not tripped"
    st = c.kv("status")
    assert st["emergency"] == "300" and st["clock"] == "synced"
    c.close()


def test_event_log_values_are_exact_and_limits_refuse_clearly(img):
    """A top-up of 4294967295 is logged as that, not 2**31-1; the operator's
    maximum top-up and maximum credit refuse with the reason and change
    nothing."""
    c = PtyConsole("--flash", img, "--pin", "2468", "--credit", 0)
    c.ok("login 2468")
    c.ok("topup 4294967295 BIG-1")
    log = c.ok("log 5")
    assert any("kind=topup value=4294967295 detail=BIG-1" in x for x in log), log
    assert c.kv("credit") == {"credit": "4294967295"}
    c.ok("set max_topup 1000")
    c.ok("set max_credit 4294968000")
    assert c.error("topup 2000 T-2") == "top-up 2000 is above the maximum top-up 1000"
    assert c.error("topup 1000 T-3") == \
        "credit would be 4294968295, above the maximum credit 4294968000"
    assert c.kv("credit") == {"credit": "4294967295"}
    assert any("kind=topup_rejected value=1000 detail=T-3" in x for x in c.ok("log 3"))
    c.ok("topup 700 T-4")                                          # within both
    cfg = c.kv("config")
    assert cfg["max_topup"] == "1000" and cfg["max_credit"] == "4294968000"
    assert c.close() == 0


def test_an_event_log_of_the_first_format_is_read(tmp_path):
    """Images written before the exact-value records still show their events."""
    from conftest import mp_json
    r = mp_json("tests/mp/console/event_log_first_format.py")
    assert r == [[1, 100, 2, 500, "OLD-1"], [2, 200, 2, 4294967295, "NEW-1"]]


def test_the_customer_button_from_the_console_and_payg_off_supplies(tmp_path, img):
    """A top-up leaves an empty meter READY; `button` on the console is the
    customer's press (make sim has no other button). A DISABLE_PAYG token
    turns the supply on with no press at all."""
    import json
    reg = tmp_path / "h.json"
    sec = tmp_path / "s.json"
    mc = [sys.executable, str(ROOT / "tools" / "meterctl.py"), "--registry", str(reg)]
    assert subprocess.run(mc + ["provision", "--id", "b1", "--out", str(sec), "--pin",
                                "2468"], capture_output=True).returncode == 0
    c = PtyConsole("--flash", img, "--secrets", sec, "--credit", 0, "--load", 1000)
    assert c.kv("relay")["relay"] == "open"
    assert "nothing to do" in c.error("button")
    c.ok("login 2468")
    c.ok("set relay_min_interval_s 0")     # no anti-chatter wait in this test
    c.ok("topup 500 B-1")
    assert c.kv("relay")["relay_state"] == "ready"
    assert c.kv("button") == {"relay_state": "closed", "relay": "closed"}
    c.ok("relay open")
    c.ok("relay auto")                     # back through READY
    assert c.kv("relay")["relay_state"] == "ready"
    tok = subprocess.run(mc + ["token", "b1", "--type", "disable"], capture_output=True,
                         text=True).stdout.strip()
    assert c.kv("token " + tok)["payg"] == "off"
    assert c.kv("relay") == {"relay": "closed", "relay_state": "closed", "relay_mode": "auto"}
    assert json.loads(sec.read_text())["meter_id"] == "b1"
    c.close()


def test_a_command_that_runs_out_of_memory_is_an_error_reply():
    from conftest import mp_json
    r = mp_json("tests/mp/console/out_of_memory.py")
    assert r["caught"] and r["error"] == "out of memory: try again"
    error, lines = r["after"]                 # the next command runs as ever
    assert error is None and len(lines) == 1 and lines[0].startswith("credit=")
