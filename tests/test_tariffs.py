"""Tariffs, billing clock, credit policy and relay rules, in virtual time on
the unix port (tests/mp/world.py drives a simulated meter in-process)."""

import json

from conftest import mp_json

PRE = """
import json, sys
sys.path.append("tests/mp")
from world import world, hours, parse_iso
from firmware.shellcore import CLOCK, TOPUP
"""

MONDAY = 1795996800        # 2026-11-30T00:00:00Z, a Monday
TOU = {"version": 2, "activate": 0, "kind": "tou", "standing_per_day": 0,
       "weekday": [[0, 1000], [420, 2000], [1020, 3000], [1320, 1500]],
       "weekend": [[0, 800], [600, 1200]]}


def test_tou_switches_at_the_boundary_to_the_pulse():
    r = mp_json(PRE + """
tou = json.loads(sys.argv[1])
# Monday 06:50 UTC, 1000 W: a pulse every 2.25 s
sim, out = world("2026-11-30T06:50:00Z", load=1000, credit=10**7, tariffs=[tou])
lg = sim.app.ledger
seen = []                                   # (pulse time, price it was billed at)
orig = lg.consume
def consume(n):
    seen.append((sim.app.clock.now(sim.clock.now_ms()) * 1000 + sim.clock.now_ms() % 1000,
                 lg.price))
    return orig(n)
lg.consume = consume
sim.advance(hours(0.5))
print(json.dumps({"seen": seen, "billed": lg.billed, "pulses": lg.pulses, "rem": lg.rem}))
""", json.dumps(TOU))
    boundary = (MONDAY + 7 * 3600) * 1000                # 07:00 in ms
    before = [p for t, p in r["seen"] if t < boundary]
    after = [p for t, p in r["seen"] if t >= boundary]
    assert set(before) == {1000} and set(after) == {2000}
    first_after = min(t for t, _ in r["seen"] if t >= boundary)
    assert first_after - boundary < 2250                 # the very first pulse after 07:00
    # billed exactly: sum of each pulse at its own price, remainders carried
    total = sum(p for _, p in r["seen"])
    assert r["billed"] == total // 1600 and r["rem"] == total % 1600


def test_tou_weekend_rates():
    r = mp_json(PRE + """
tou = json.loads(sys.argv[1])
sim, out = world("2026-11-28T09:00:00Z", load=2000, credit=10**7, tariffs=[tou])
prices = []
for h in range(4):
    sim.advance(hours(h + 0.5))
    prices.append(sim.app.ledger.price)
print(json.dumps({"prices": prices}))
""", json.dumps(TOU))
    assert r["prices"] == [800, 1200, 1200, 1200]        # Saturday, 10:00 switch


def test_block_tariff_over_a_month_with_rollover():
    r = mp_json(PRE + """
block = {"version": 2, "activate": 0, "kind": "block", "standing_per_day": 0,
         "tiers": [[0, 1000], [200, 2000], [400, 3000]]}
# 100 imp/kWh so that a month of 1 kW is 72,000 pulses
sim, out = world("2026-11-01T00:00:00Z", load=1000, credit=10**8, tariffs=[block], imp=100)
lg = sim.app.ledger
sim.advance(hours(30 * 24))                # to 2026-12-01T00:00
november = lg.billed
at_end = (lg.month_pulses, lg.price)
sim.advance(hours(30 * 24 + 1))
print(json.dumps({"november": november, "at_end": at_end, "dec_pulses": lg.month_pulses,
                  "dec_price": lg.price, "total": lg.billed}))
""")
    # 1 kW from midnight: a pulse every 36 s; the 72,000th lands exactly at
    # midnight on 1 December and belongs to December. November: 71,999 pulses,
    # 200 kWh at 10.00, 200 at 20.00 and the rest at 30.00 per kWh.
    nov = 20000 * 10 + 20000 * 20 + 31999 * 30
    assert r["november"] == nov + 10            # + December's first pulse
    assert r["at_end"] == [1, 1000]
    assert r["dec_pulses"] == 101 and r["dec_price"] == 1000
    assert r["total"] == nov + 101 * 10


def test_standing_charge_with_zero_load():
    r = mp_json(PRE + """
flat = {"version": 2, "activate": 0, "kind": "flat", "price": 2000, "standing_per_day": 150}
sim, out = world("2026-11-01T12:00:00Z", load=0, credit=5000, tariffs=[flat])
sim.advance(hours(24 * 10))
lg = sim.app.ledger
print(json.dumps({"credit": lg.credit, "standing": lg.standing_total,
                  "events": len(out.kinds("standing_charge")), "pulses": lg.pulses}))
""")
    assert r["pulses"] == 0
    assert r["standing"] == 1500 and r["credit"] == 3500 and r["events"] == 10


def test_pending_tariff_activates_on_time_across_a_reboot(tmp_path):
    r = mp_json(PRE + """
img = sys.argv[1]
v2 = {"version": 2, "activate": parse_iso("2026-11-30T12:00:00Z"), "kind": "flat",
      "price": 3000, "standing_per_day": 0}
sim, out = world("2026-11-30T10:00:00Z", load=1000, credit=10**6, flash=img,
                 price=1000, tariffs=[v2])
sim.advance(hours(1))
p1 = sim.app.ledger.price
pending = [t["version"] for t in sim.app.tariffs()]
sim.hal.chip.close()
# power cut and back, one hour later by the time source
sim, out = world("2026-11-30T11:00:00Z", load=1000, flash=img)
lg = sim.app.ledger
times = []
orig = lg.set_price
def set_price(p):
    times.append((sim.app.clock.now(sim.clock.now_ms()), p))
    orig(p)
lg.set_price = set_price
sim.advance(hours(2))
print(json.dumps({"p1": p1, "pending": pending, "times": times, "price": lg.price}))
""", tmp_path / "m.img")
    assert r["p1"] == 1000 and r["pending"] == [1, 2]
    noon = MONDAY + 12 * 3600
    assert r["times"] == [[noon, 3000]] and r["price"] == 3000


def test_friendly_nights_hold_the_relay_then_cut_at_the_end():
    r = mp_json(PRE + """
# credit for 1 kWh; 1 kW from 19:00 -> exhausted at 20:00, inside 18:00-08:00
sim, out = world("2026-11-30T19:00:00Z", load=1000, credit=2000, price=2000,
                 settings={"friendly_nights": "18:00-08:00"})
sim.advance(hours(2))
mid = (sim.app.credit_state, sim.hal.relay.closed, sim.app.ledger.credit)
sim.advance(hours(13.5))                    # to 08:30
opened = [e for e in out.kinds("relay") if e["relay"] == "open"]
print(json.dumps({"mid": mid, "opened": [e["t"] for e in opened],
                  "credit": sim.app.ledger.credit, "state": sim.app.credit_state}))
""")
    state, closed, credit = r["mid"]
    assert state == "friendly" and closed and credit < 0      # usage accrues as debt
    assert r["opened"] == [13 * 3600 * 1000]                  # 08:00 sharp
    assert r["state"] == "exhausted"


def test_emergency_credit_and_its_recovery_from_the_next_topup():
    r = mp_json(PRE + """
sim, out = world("2026-11-30T10:00:00Z", load=1000, credit=600, price=2000,
                 settings={"emergency_credit": 500, "emergency_threshold": 1000,
                           "debt_share_pct": 25, "debt_cap": 300})
app = sim.app
sim.advance(hours(0.1))
app.button(sim.clock.now_ms())              # the customer asks for emergency credit
after = (app.ledger.credit, app.ledger.emergency, app.credit_state)
try:
    app.take_emergency(sim.clock.now_ms())
    twice = "granted"
except ValueError as e:
    twice = str(e)
app.ledger.set_debt(1000)
credit_before = app.ledger.credit
app.topup("T-1", 2000, sim.clock.now_ms())
lg = app.ledger
print(json.dumps({"after": after, "twice": twice, "gain": lg.credit - credit_before,
                  "emergency": lg.emergency, "debt": lg.debt, "repaid": lg.emergency_repaid,
                  "state": app.credit_state}))
""")
    credit, emergency, state = r["after"]
    assert emergency == 500 and state == "emergency"
    assert "already taken" in r["twice"]
    # 2000: 500 repays the emergency credit, 25% of the rest capped at 300 to debt
    assert r["gain"] == 2000 - 500 - 300
    assert r["emergency"] == 0 and r["repaid"] == 500 and r["debt"] == 700
    assert r["state"] == "ok"


def test_anti_chatter_defers_a_quick_reconnect():
    r = mp_json(PRE + """
sim, out = world("2026-11-30T10:00:00Z", load=2000, credit=100, price=2000,
                 settings={"reconnect": "auto", "relay_min_interval_s": 30})
sim.advance(95000)                         # credit gone after 0.05 kWh (90 s): open
t_open = out.kinds("relay")[-1]["t"]
sim.core.at(97000, TOPUP, (1000, "Q", None))
sim.advance(160000)
print(json.dumps({"relay": [(e["t"], e["relay"], e["reason"]) for e in out.kinds("relay")],
                  "t_open": t_open}))
""")
    t_open = r["t_open"]
    assert t_open == 90000
    assert r["relay"][-2] == [t_open, "open", "credit"]
    assert r["relay"][-1] == [t_open + 30000, "closed", "topup"]   # held 30 s, not 7 s


def test_max_power_trip_and_its_resets():
    r = mp_json(PRE + """
sim, out = world("2026-11-30T10:00:00Z", load=4000, credit=10**6,
                 settings={"max_power_w": 3000, "max_power_window_s": 10,
                           "trip_holdoff_s": 60, "relay_min_interval_s": 0})
app = sim.app
sim.advance(30000)
tripped = (app.relay.state, sim.hal.relay.closed, [e["value"] for e in out.kinds("trip")])
early = app.button(40000) if sim.advance(40000) is None else None
sim.advance(100000)
late = app.button(100000)
after_button = app.relay.state
sim.advance(130000)                         # still 4 kW: trips again
again = app.relay.state
app.reset_trip(130000)
by_tech = app.relay.state
print(json.dumps({"tripped": tripped, "early": early, "late": late,
                  "after_button": after_button, "again": again, "by_tech": by_tech,
                  "trips": len(out.kinds("trip"))}))
""")
    state, closed, powers = r["tripped"]
    assert state == "tripped" and closed is False and powers[0] > 3000
    assert r["early"] == "hold-off"
    assert r["after_button"] == "closed"
    assert r["again"] == "tripped" and r["trips"] == 2
    assert r["by_tech"] == "ready"          # the tenant's button reconnects


def test_latching_relay_gets_coil_pulses():
    r = mp_json(PRE + """
sim, out = world(None, load=1000, credit=100, price=2000,
                 settings={"relay_pulse_ms": 80, "reconnect": "auto"})
sim.advance(hours(0.2))
print(json.dumps({"pulses": sim.hal.relay.pulses}))
""")
    assert [p[1:] for p in r["pulses"]] == [[True, 100], [False, 80]]


def test_clock_unsynced_then_resynced_both_ways(tmp_path):
    r = mp_json(PRE + """
img = sys.argv[1]
flat = {"version": 2, "activate": 0, "kind": "flat", "price": 2000, "standing_per_day": 100}
sim, out = world("2026-11-30T10:00:00Z", load=500, credit=10**6, flash=img, tariffs=[flat])
sim.advance(hours(2))
sim.hal.chip.close()
# power cut; back without any time source: resume from the persisted time
sim, out = world(None, load=500, flash=img)
app = sim.app
boot = (app.clock.now(0), app.clock.synced)
sim.advance(hours(1))
billed_before = app.ledger.billed
standing_before = app.ledger.standing_total
# the time source returns: 3 days later than the meter thought
t = app.clock.now(sim.clock.now_ms())
sim.core.at(sim.clock.now_ms() + 1, CLOCK, t + 3 * 86400)
sim.advance(sim.clock.now_ms() + 2)
fwd = (app.ledger.standing_total - standing_before, app.clock.synced,
       app.ledger.billed - billed_before)
# a bad source says two hours earlier: logged, not followed
t2 = app.clock.now(sim.clock.now_ms())
sim.core.at(sim.clock.now_ms() + 1, CLOCK, t2 - 7200)
sim.advance(sim.clock.now_ms() + 2)
held = app.clock.now(sim.clock.now_ms())
sim.advance(sim.clock.now_ms() + 3600 * 1000)
after_hour = app.clock.now(sim.clock.now_ms())
print(json.dumps({"boot": boot, "fwd": fwd, "t2": t2, "held": held, "after_hour": after_hour,
                  "back_events": [e["value"] for e in out.kinds("clock_back")],
                  "fwd_events": [e["value"] for e in out.kinds("clock")],
                  "standing": app.ledger.standing_total}))
""", tmp_path / "c.img")
    start = MONDAY + 10 * 3600
    t_saved, synced = r["boot"]
    assert not synced and start + 2 * 3600 - 900 <= t_saved <= start + 2 * 3600
    standing, synced, energy_billed = r["fwd"]
    assert standing == 300 and synced        # 3 days crossed: standing charge only
    assert energy_billed < 10                # no energy re-billed for the gap
    assert r["fwd_events"] and r["fwd_events"][0] >= 3 * 86400
    assert r["back_events"] and r["back_events"][0] <= -7200
    assert r["held"] == r["t2"]              # the billing clock did not go back...
    assert r["after_hour"] == r["t2"]        # ...and holds until real time catches up
    assert r["standing"] == 300              # no day billed twice


def test_low_credit_hysteresis_and_indicator():
    r = mp_json(PRE + """
sim, out = world("2026-11-30T10:00:00Z", load=2000, credit=1100, price=2000,
                 settings={"low_credit": 1000, "low_clear": 1500})
app = sim.app
sim.advance(hours(0.05))                   # 200 Wh = 400 minor: credit 700 -> low
low = (app.credit_state, sim.hal.indicator.state)
app.topup("A", 500, sim.clock.now_ms())     # 1200: still below low_clear
mid = app.credit_state
app.topup("B", 500, sim.clock.now_ms())     # 1700: back to ok
print(json.dumps({"low": low, "mid": mid, "end": app.credit_state,
                  "shown": [s for _, s in sim.hal.indicator.shown],
                  "events": [e["detail"] for e in out.kinds("low_credit")]}))
""")
    assert r["low"] == ["low", "low"] and r["mid"] == "low" and r["end"] == "ok"
    assert r["shown"][-2:] == ["low", "ok"] and r["events"] == ["low"]


def test_first_sync_of_a_never_synced_meter_bills_no_gap(tmp_path):
    """A meter that ran unsynced from 1970 for two days, then learns the true
    time: the two days it ran are charged, the decades before are not."""
    tf = tmp_path / "st.json"
    tf.write_text(json.dumps({"version": 2, "activate": 0, "kind": "flat", "price": 2000,
                              "standing_per_day": 10}))
    from conftest import run_sim
    r = run_sim("--credit", 100000, "--tariff", tf, "--hours", 50, "--json",
                "--sync-at", "172800=2026-12-01T00:00:00Z")
    assert r.rc == 0, r.stderr
    charges = [e for e in r.events if e["event"] == "standing_charge"]
    total = sum(e["value"] for e in charges)
    assert 0 < total <= 20 and all(e["detail"] == "1 days" for e in charges), charges
    clock = [e for e in r.events if e["event"] == "clock"]
    assert clock and clock[0].get("detail") == "first sync"
    assert r.last["time"].startswith("2026-12-01T02:00") and r.last["credit"] == 100000 - total


def test_anti_chatter_never_delays_a_disconnect_for_credit():
    """Credit bought at 100 s runs out ~4 s after the reconnect: the relay
    opens on that pulse, however long the anti-chatter interval."""
    from conftest import run_sim
    for interval in (10, 3600):
        r = run_sim("--credit", 0, "--price", 2000, "--load", 10000, "--hours", 0.05,
                    "--json", "--set", "reconnect=auto", "--set",
                    "relay_min_interval_s=%d" % interval, "--topup", "100:20:T1")
        assert r.rc == 0, r.stderr
        opens = [e["t"] for e in r.events if e["event"] == "relay" and e["relay"] == "open"
                 and e["t"] > 100]
        assert opens and opens[0] < 104.5, (interval, opens)
        assert r.last["credit"] >= -2, r.last          # at most a pulse past zero
