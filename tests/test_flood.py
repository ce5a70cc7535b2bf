"""Issue 17 item 6: a flood of junk commands from anyone on the broker. The
meter handles every message it acknowledges (nothing acknowledged is
dropped), answers and logs rejections within a budget and aggregates the
rest into one `cmd_flood` event per minute, and a signed top-up sent in the
middle of the flood lands exactly once. Real Mosquitto, real simulator."""

import json
import sys
import time

import paho.mqtt.client as mqtt

from conftest import ROOT, Broker
from test_mqtt import Listener, finish, provision, start_sim

JUNK = 6000


def junk(i, key_ctr):
    """The kinds the attack campaign sent, in turn."""
    k = i % 5
    if k == 0:
        return b"\xff{not json %d" % i
    if k == 1:
        return json.dumps({"ctr": i, "cmd": "relay", "args": ["open"]}).encode()
    if k == 2:
        return json.dumps({"ctr": key_ctr + i, "exp": 0, "cmd": "topup",
                           "args": ["99999", "F%d" % i], "sig": "00" * 32}).encode()
    if k == 3:
        return json.dumps({"ctr": i, "cmd": "status"}).encode()
    return json.dumps({"ctr": "x", "cmd": 5}).encode()


def test_a_flood_of_junk_commands_is_rate_limited_and_drops_nothing_acknowledged(tmp_path):
    # the broker queues whatever the meter has not read yet (its default of
    # 1,000 would drop part of the flood itself, and this test counts)
    b = Broker(tmp_path, extra="max_queued_messages 0\n").start()
    try:
        reg, sec = provision(b.addr, tmp_path)
        hear = Listener(b.addr)
        # at 10x the meter's minute-long flood windows pass within the test
        p = start_sim("--broker", b.addr, "--secrets", sec, "--credit", 1000, "--hours", 0.06,
                      "--speed", 10, "--json")
        time.sleep(3)
        sys.path.insert(0, str(ROOT / "tools"))
        import meterctl
        r = meterctl.Registry(reg)
        good = meterctl.signed(r, "m1", "topup", ["700", "PAY-FLOOD"])
        r.save()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="attacker")
        host, port = b.addr.split(":")
        c.connect(host, int(port))
        c.loop_start()
        t0 = time.time()
        for i in range(JUNK):
            if i == JUNK // 2:
                c.publish("meters/m1/cmd", json.dumps(good), qos=1)
            c.publish("meters/m1/cmd", junk(i, good["ctr"]), qos=1)
        sent_s = time.time() - t0
        c.loop_stop()
        c.disconnect()
        res = finish(p)
        time.sleep(1)
        hear.close()
    finally:
        b.stop()
    stats = res.last["mqtt"]
    # every message the meter acknowledged was handled: all of the flood
    assert stats["commands"] == JUNK + 1, stats
    topups = [e for e in res.events if e["event"] == "topup"]
    assert [e["amount"] for e in topups] == [700] and res.last["credit"] == 1700
    events = hear.of("events")
    logged = [e for e in events if e["event"] == "cmd_rejected"]
    floods = [e for e in events if e["event"] == "cmd_flood"]
    ignored = sum(e["value"] for e in floods)
    assert ignored == stats["ignored"] and ignored > JUNK - 100, (floods, stats)
    minutes = (max(e["t"] for e in events) - min(e["t"] for e in events)) // 60 + 1
    assert 0 < len(logged) <= 10 * minutes and len(floods) <= minutes, (len(logged), minutes)
    # every event the meter logged reached the head-end, in order, no gap
    seqs = [e["seq"] for e in hear.of("events")]
    assert sorted(set(seqs)) == list(range(1, max(seqs) + 1))
    replies = hear.of("reply")
    assert any(isinstance(x, dict) and x.get("ctr") == good["ctr"] and x.get("ok")
               for x in replies)
    # answers are budgeted too: each junk message got a reply or was ignored
    assert len(replies) - 1 + ignored == JUNK, (len(replies), ignored)
    print("flood: %d junk in %.1f s; %d cmd_rejected events, %d cmd_flood, %d replies, "
          "%d ignored" % (JUNK, sent_s, len(logged), len(floods), len(replies), ignored))
