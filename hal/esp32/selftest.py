# The hardware self-test a technician runs on a board, the acceptance test of a
# new meter (docs/boards.md): one jumper wire from the board's PIN_TEST_OUT to
# its pulse input, then, from the REPL (maintenance mode, or before main.py
# runs):  import hal.esp32.selftest as t; t.run()
# It prints PASS or FAIL per item and overall: pulses driven into the pulse
# input are counted exactly; the relay switches closed and open; the meter
# partition takes a write, reads it back and erases (only while it holds no
# data: a ledger is never touched, only read); WiFi associates; the broker
# answers an MQTT CONNECT. The relay is left open.

import json
import time

from machine import Pin

PULSES = 100


def _pulses(board, hal):
    out = Pin(board.PIN_TEST_OUT, Pin.OUT, value=0)
    before = hal.pulses.count()
    for _ in range(PULSES):
        out.value(1)
        time.sleep_ms(2)
        out.value(0)
        time.sleep_ms(2)
    time.sleep_ms(20)
    n = hal.pulses.count() - before
    return n == PULSES, "%d of %d counted (jumper GPIO%d to GPIO%d)" % (
        n, PULSES, board.PIN_TEST_OUT, board.PIN_CF)


def _relay(hal):
    hal.relay.set(True)
    time.sleep_ms(500)
    hal.relay.set(False)
    return not hal.relay.closed, "closed, then open: two clicks"


def _flash(board):
    from esp32 import Partition
    part = Partition.find(Partition.TYPE_DATA, label=board.PARTITION)[0]
    bs = board.BLOCK_SIZE
    n = part.ioctl(4, 0)
    buf = bytearray(bs)
    blank = True
    for b in range(n):
        part.readblocks(b, buf)
        if buf.count(b"\xff") != bs:
            blank = False
    if not blank:
        return True, "%d blocks read; holds data, so not written" % n
    last = n - 1
    pattern = bytes(i * 7 & 0xFF for i in range(bs))
    part.writeblocks(last, pattern, 0)
    part.readblocks(last, buf)
    ok = buf == pattern
    part.ioctl(6, last)
    part.readblocks(last, buf)
    ok = ok and buf.count(b"\xff") == bs
    return ok, "block %d written, read back, erased" % last


def _wifi(hal, wait_s=20):
    t0 = time.ticks_ms()
    while not hal.wifi.isconnected():
        if time.ticks_diff(time.ticks_ms(), t0) > wait_s * 1000:
            return False, "not associated in %d s" % wait_s
        time.sleep_ms(100)
    return True, ""


def _broker(board):
    from firmware.settings import Settings
    s = Settings(board.settings_flash(), {})
    host, port = s.get("mqtt_host"), s.get("mqtt_port") or 1883
    if not host:
        return False, "no broker provisioned"
    from umqtt.simple import MQTTClient
    c = MQTTClient("selftest-%s" % (s.get("meter_id") or "meter"), host, port,
                   s.get("mqtt_user") or None, s.get("mqtt_pass") or None)
    c.connect()             # waits for CONNACK; raises if refused
    c.disconnect()
    return True, "%s:%d answered" % (host, port)


def run(board=None, out=print):
    """Run every item; True when all passed."""
    with open("board.json") as f:
        cfg = json.load(f)
    if board is None:
        name = cfg["board"]
        board = getattr(__import__("boards." + name), name)
    hal = board.build_hal(cfg.get("wifi_ssid", ""), cfg.get("wifi_pass", ""))
    passed = True
    for name, check in (("pulses", lambda: _pulses(board, hal)), ("relay", lambda: _relay(hal)),
                        ("flash", lambda: _flash(board)), ("wifi", lambda: _wifi(hal)),
                        ("broker", lambda: _broker(board))):
        try:
            ok, detail = check()
        except Exception as e:      # a test reports every failure and goes on
            ok, detail = False, repr(e)
        passed = passed and ok
        out("%s: %s%s" % (name, "PASS" if ok else "FAIL", " (%s)" % detail if detail else ""))
    out("selftest: " + ("PASS" if passed else "FAIL"))
    return passed
