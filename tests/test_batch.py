"""Batched billing: the simulator bills the pulses between decision points in
one step, and wakes only when something the meter reads from its clock can
change (a TOU step, midnight, a friendly period, an activation, a clock save).
It must leave exactly what stepping at every pulse and every minute leaves
(`--per-pulse`): the same flash image byte for byte (ledger, settings, event
log), the same events at the same times, the same credit."""

import json

from conftest import run_sim

FRIDAY = 1795737600           # 2026-11-27T00:00:00Z; the week crosses 1 December
DAY = 86400


def week(tmp_path, mode):
    """A week of one meter: TOU with weekend rates and a standing charge,
    then a block tariff taking over at an odd second (its month resets on
    1 December), a noisy daily load, a friendly night period, credit running
    out (the relay opens at zero), top-ups and a forward clock sync."""
    tariffs = tmp_path / "tariffs.json"
    tariffs.write_text(json.dumps([
        {"version": 2, "activate": 0, "kind": "tou", "standing_per_day": 150,
         "weekday": [[0, 1000], [427, 2500], [1033, 3100], [1319, 1500]],
         "weekend": [[0, 800], [607, 1200]]},
        {"version": 3, "activate": FRIDAY + 3 * DAY + 12345, "kind": "block",
         "standing_per_day": 90, "tiers": [[0, 1100], [20, 2100], [45, 3300]]}]))
    profile = tmp_path / "load.csv"
    profile.write_text("time,watts\n00:00,300\n06:30,2400\n08:10,700\n"
                       "17:45,3900\n22:05,450\n")
    img = tmp_path / ("%s.img" % mode)
    args = ["--flash", img, "--start", "2026-11-27T00:00:00Z", "--days", 7, "--json",
            "--load-profile", profile, "--noise", 35, "--seed", 7,
            "--tariff", tariffs, "--credit", 30000,
            "--topup", "%d:45000:R1" % (2 * DAY + 3601),
            "--topup", "%d:9999:R2" % (5 * DAY + 77),
            "--sync-at", "%d=2026-12-01T09:47:13Z" % (4 * DAY + 9 * 3600),
            "--set", "reconnect=auto", "--set", "low_credit=5000",
            "--set", "friendly_nights=23:37-05:11"]
    if mode == "per-pulse":
        args.append("--per-pulse")
    r = run_sim(*args)
    assert r.rc == 0, r.stderr
    return r, img.read_bytes()


def test_a_batched_week_writes_what_a_per_pulse_week_writes(tmp_path):
    one, flash_one = week(tmp_path, "per-pulse")
    many, flash_many = week(tmp_path, "batched")
    # the week did what it is meant to exercise
    ev = [e["event"] for e in one.events]
    relay = [(e["relay"], e["reason"]) for e in one.events if e["event"] == "relay"]
    assert ("open", "credit") in relay and ("closed", "topup") in relay
    for kind in ("low_credit", "topup", "standing_charge", "clock"):
        assert kind in ev, kind
    assert one.last["pulses"] > 50000
    # ... and batching changed none of it
    assert many.events == one.events
    assert flash_many == flash_one
    for k in ("credit", "pulses", "energy_wh", "state", "relay_state", "flash_writes",
              "flash_bytes_written", "flash_max_erases", "true_pulses"):
        assert many.last[k] == one.last[k], k
    # status lines: the same readings, power aside (a batch's power is its average)
    def reading(s):
        return {k: v for k, v in s.items() if k != "power_w"}
    assert [reading(s) for s in many.status] == [reading(s) for s in one.status]
