"""Tariffs, billing clock, credit policy and relay rules, in virtual time on
the unix port (tests/mp/world.py drives a simulated meter in-process)."""

import json

from conftest import mp_json


MONDAY = 1795996800        # 2026-11-30T00:00:00Z, a Monday
TOU = {"version": 2, "activate": 0, "kind": "tou", "standing_per_day": 0,
       "weekday": [[0, 1000], [420, 2000], [1020, 3000], [1320, 1500]],
       "weekend": [[0, 800], [600, 1200]]}


def test_tou_switches_at_the_boundary_to_the_pulse():
    r = mp_json("tests/mp/tariffs/tou_boundary.py", json.dumps(TOU))
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
    r = mp_json("tests/mp/tariffs/tou_weekend.py", json.dumps(TOU))
    assert r["prices"] == [800, 1200, 1200, 1200]        # Saturday, 10:00 switch


def test_block_tariff_over_a_month_with_rollover():
    r = mp_json("tests/mp/tariffs/block_month_rollover.py")
    # 1 kW from midnight: a pulse every 36 s; the 72,000th lands exactly at
    # midnight on 1 December and belongs to December. November: 71,999 pulses,
    # 200 kWh at 10.00, 200 at 20.00 and the rest at 30.00 per kWh.
    nov = 20000 * 10 + 20000 * 20 + 31999 * 30
    assert r["november"] == nov + 10            # + December's first pulse
    assert r["at_end"] == [1, 1000]
    assert r["dec_pulses"] == 101 and r["dec_price"] == 1000
    assert r["total"] == nov + 101 * 10


def test_standing_charge_with_zero_load():
    r = mp_json("tests/mp/tariffs/standing_zero_load.py")
    assert r["pulses"] == 0
    assert r["standing"] == 1500 and r["credit"] == 3500 and r["events"] == 10


def test_pending_tariff_activates_on_time_across_a_reboot(tmp_path):
    r = mp_json("tests/mp/tariffs/pending_tariff_reboot.py", tmp_path / "m.img")
    assert r["p1"] == 1000 and r["pending"] == [1, 2]
    noon = MONDAY + 12 * 3600
    assert r["times"] == [[noon, 3000]] and r["price"] == 3000


def test_friendly_nights_hold_the_relay_then_cut_at_the_end():
    r = mp_json("tests/mp/tariffs/friendly_nights.py")
    state, closed, credit = r["mid"]
    assert state == "friendly" and closed and credit < 0      # usage accrues as debt
    assert r["opened"] == [13 * 3600 * 1000]                  # 08:00 sharp
    assert r["state"] == "exhausted"


def test_emergency_credit_and_its_recovery_from_the_next_topup():
    r = mp_json("tests/mp/tariffs/emergency_credit.py")
    credit, emergency, state = r["after"]
    assert emergency == 500 and state == "emergency"
    assert "already taken" in r["twice"]
    # 2000: 500 repays the emergency credit, 25% of the rest capped at 300 to debt
    assert r["gain"] == 2000 - 500 - 300
    assert r["emergency"] == 0 and r["repaid"] == 500 and r["debt"] == 700
    assert r["state"] == "ok"


def test_anti_chatter_defers_a_quick_reconnect():
    r = mp_json("tests/mp/tariffs/anti_chatter.py")
    t_open = r["t_open"]
    assert t_open == 90000
    assert r["relay"][-2] == [t_open, "open", "credit"]
    assert r["relay"][-1] == [t_open + 30000, "closed", "topup"]   # held 30 s, not 7 s


def test_max_power_trip_and_its_resets():
    r = mp_json("tests/mp/tariffs/max_power_trip.py")
    state, closed, powers = r["tripped"]
    assert state == "tripped" and closed is False and powers[0] > 3000
    assert r["early"] == "hold-off"
    assert r["after_button"] == "closed"
    assert r["again"] == "tripped" and r["trips"] == 2
    assert r["by_tech"] == "ready"          # the tenant's button reconnects


def test_latching_relay_gets_coil_pulses():
    r = mp_json("tests/mp/tariffs/latching_relay.py")
    assert [p[1:] for p in r["pulses"]] == [[True, 100], [False, 80]]


def test_clock_unsynced_then_resynced_both_ways(tmp_path):
    r = mp_json("tests/mp/tariffs/clock_resync.py", tmp_path / "c.img")
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
    r = mp_json("tests/mp/tariffs/low_credit_hysteresis.py")
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
