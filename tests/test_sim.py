"""The simulated meter end to end, driven through tools/sim.py as users do."""

import json
import signal
import subprocess
import sys

import pytest

from conftest import ROOT, run_sim

PULSE_WH = 0.625  # one pulse at 1600 imp/kWh


def test_energy_is_exact_over_a_day():
    r = run_sim("--load", 1000, "--days", 1, "--json", "--credit", 10 ** 6)
    assert r.rc == 0, r.stderr
    last = r.last
    assert last["t"] == 86400
    assert abs(last["energy_wh"] - 24000) <= PULSE_WH
    assert last["true_energy_wh"] == last["energy_wh"]
    assert last["power_w"] == 1000
    # a status line every 15 virtual minutes by default
    assert len(r.status) == 24 * 4 + 2


def test_billing_is_exact_with_an_awkward_price():
    r = run_sim("--load", 2345, "--hours", 30, "--json", "--credit", 10 ** 7,
                "--price", 1999)
    assert r.rc == 0, r.stderr
    p = r.last["pulses"]
    assert r.last["credit"] == 10 ** 7 - p * 1999 // 1600


def test_relay_opens_within_one_pulse_of_zero_credit_and_a_topup_closes_it():
    # 1000 minor units at 2000/kWh buy 0.5 kWh = 800 pulses; 1000 W takes 30 min.
    # Automatic reconnection is configured here (the default waits for a button).
    r = run_sim("--credit", 1000, "--price", 2000, "--load", 1000, "--hours", 2,
                "--json", "--topup", "3600:500:T1", "--set", "reconnect=auto")
    assert r.rc == 0, r.stderr
    relay = [(e["t"], e["relay"], e["reason"]) for e in r.events if e["event"] == "relay"]
    assert relay[0] == (0, "closed", "boot")
    t_open, state, reason = relay[1]
    assert (state, reason) == ("open", "credit")
    assert abs(t_open - 1800) <= 2.25          # one pulse is 2.25 s at 1 kW
    at_open = [s for s in r.status if s["t"] <= t_open][-1]
    assert at_open["pulses"] <= 800
    # no energy flows while open
    between = [s for s in r.status if t_open < s["t"] < 3600]
    assert between and all(s["pulses"] == 800 and s["power_w"] == 0 for s in between)
    assert relay[2] == (3600, "closed", "topup")
    # 500 more buy 400 pulses: open again 15 minutes later
    assert relay[3][1:] == ("open", "credit") and abs(relay[3][0] - 4500) <= 2.25
    assert r.last["pulses"] == 1200 and r.last["credit"] == 0


def test_reboot_keeps_state_and_relay_comes_from_the_ledger(tmp_path):
    img = tmp_path / "meter.img"
    a = run_sim("--flash", img, "--credit", 700, "--price", 2000, "--load", 1500,
                "--hours", 1, "--json")
    assert a.rc == 0 and a.last["relay"] == "open" and a.last["credit"] <= 0
    b = run_sim("--flash", img, "--credit", 99999, "--load", 1500, "--hours", 1, "--json")
    boot = b.events[0]
    assert boot["event"] == "boot" and boot["new"] is False
    assert boot["credit"] == a.last["credit"] and boot["pulses"] == a.last["pulses"]
    first = [e for e in b.events if e["event"] == "relay"][0]
    assert first["relay"] == "open" and first["reason"] == "boot"
    assert b.last["pulses"] == a.last["pulses"]     # still cut off
    # a top-up makes the relay READY; the customer's button closes it
    c = run_sim("--flash", img, "--hours", 1, "--json", "--topup", "0:1000:X",
                "--load", 1500, "--button-at", 5)
    relay = [(e["t"], e["relay"], e["reason"]) for e in c.events if e["event"] == "relay"]
    assert [r[1:] for r in relay] == [("open", "boot"), ("closed", "button"), ("open", "credit")]
    assert relay[1][0] == 5
    ready = [e for e in c.events if e["event"] == "relay_state"]
    assert ready[0]["t"] == 0 and ready[0]["detail"] == "ready"
    d = run_sim("--flash", img, "--hours", 0.1, "--json", "--topup", "0:1000:X")
    assert any(e["event"] == "topup_rejected" for e in d.events)


def test_load_profile_csv(tmp_path):
    prof = tmp_path / "day.csv"
    prof.write_text("time,watts\n00:00,200\n06:00,2000\n09:00,500\n18:00,3000\n23:00,200\n")
    r = run_sim("--load-profile", prof, "--days", 2, "--json", "--credit", 10 ** 6)
    assert r.rc == 0, r.stderr
    day_wh = 6 * 200 + 3 * 2000 + 9 * 500 + 5 * 3000 + 1 * 200
    assert abs(r.last["energy_wh"] - 2 * day_wh) <= PULSE_WH
    at_7 = [s for s in r.status if s["t"] == 7 * 3600][0]
    assert at_7["power_w"] == 2000


def test_seed_makes_noisy_runs_repeatable():
    a = run_sim("--load", 800, "--noise", 30, "--seed", 5, "--hours", 5, "--json", "--credit", 10 ** 6)
    b = run_sim("--load", 800, "--noise", 30, "--seed", 5, "--hours", 5, "--json", "--credit", 10 ** 6)
    c = run_sim("--load", 800, "--noise", 30, "--seed", 6, "--hours", 5, "--json", "--credit", 10 ** 6)
    assert a.stdout == b.stdout
    assert a.last["pulses"] != c.last["pulses"]
    assert abs(a.last["energy_wh"] - 4000) < 400


def test_foreign_flash_image_is_a_fault_and_left_alone(tmp_path):
    img = tmp_path / "foreign.img"
    data = bytes((i * 7) & 0xFF for i in range(65536))
    img.write_bytes(data)
    r = run_sim("--flash", img, "--hours", 1)
    assert r.rc == 4
    assert "ledger fault" in r.stderr and "not formatting" in r.stderr
    assert img.read_bytes() == data


def test_wrong_sized_flash_image_is_refused(tmp_path):
    img = tmp_path / "small.img"
    img.write_bytes(b"\xff" * 1000)
    r = run_sim("--flash", img, "--hours", 1)
    assert r.rc == 4 and "board expects" in r.stderr
    assert img.read_bytes() == b"\xff" * 1000


@pytest.mark.parametrize("args", [
    ["--bogus"], ["--load", "abc"], ["--load", "-5"], ["--hours", "0"],
    ["--hours", "x"], ["--days", "-1"], ["--topup", "10"], ["--topup", "a:b"],
    ["--topup", "5:0"], ["--load", "1", "--load-profile", "x.csv"],
    ["--load-profile", "/nonexistent.csv"], ["--hours", "1", "--days", "1"],
    ["--noise", "200"], ["--flash", "/nonexistent/dir/x.img"], ["--credit", "1.5"],
    ["--cut-after-writes", "-1"], ["stray"],
])
def test_bad_flags_get_usage_and_exit_2(args):
    r = run_sim(*args)
    assert r.rc == 2
    assert "usage:" in r.stderr and "error:" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_human_output_and_ctrl_c_in_real_time():
    p = subprocess.Popen([sys.executable, str(ROOT / "tools" / "sim.py"), "--speed", "3600",
                          "--load", "1000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    lines = [p.stdout.readline() for _ in range(4)]
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=20)
    assert p.returncode == 0, err
    assert "boot" in lines[0]
    final = out.strip().splitlines()[-1]
    assert "energy=" in final and "credit=" in final and "relay=closed" in final
    assert "Traceback" not in err


@pytest.mark.parametrize("name", ["flat", "tou", "block", "pending"])
def test_example_tariffs_run(name):
    r = run_sim("--tariff", ROOT / "examples" / "tariffs" / (name + ".json"),
                "--start", "2026-12-31T12:00:00Z", "--days", 1, "--load", 800,
                "--credit", 10 ** 6, "--json", "--report", 3600)
    assert r.rc == 0, r.stderr
    prices = {s["price"] for s in r.status[1:]}
    expect = {"flat": {2000}, "tou": {1200, 2200, 3500, 1500}, "block": {1500},
              "pending": {2000, 2400}}[name]
    assert prices == expect
    assert r.last["time"] == "2027-01-01T12:00:00Z"


def test_plot_draws_a_png(tmp_path):
    png = tmp_path / "run.png"
    r = run_sim("--load", 1500, "--hours", 12, "--credit", 5000, "--plot", png)
    assert r.rc == 0, r.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10000
    assert r.status and r.last["relay"] == "open"     # JSON lines were passed through
    # enough status lines for the panels to show the run (not one per 15 min)
    assert len(r.status) >= 300


def test_plot_reads_the_events_and_the_wall_clock():
    """The relay panel follows the switch events (exact), top-ups are marked,
    and a meter that knows the time gets a UTC axis."""
    import sys
    sys.path.insert(0, str(ROOT / "tools"))
    from plot import _x
    lines = [{"t": 0.0, "credit": 5, "time": "2026-12-01T00:00:00Z"},
             {"t": 3600.0, "credit": 4, "time": "2026-12-01T01:00:00Z"}]
    x, label = _x(lines)
    assert label == "UTC" and x({"t": 1800}).hour == 0 and x({"t": 3600}).hour == 1
    x, label = _x([{"t": 0.0, "credit": 5, "time": "1970-01-01T00:00:00Z"}])
    assert label == "days since the start" and x({"t": 43200}) == 0.5


@pytest.mark.parametrize("args", [
    ["--tariff", "/nonexistent.json"], ["--start", "2026-13-01"], ["--start", "yesterday"],
    ["--sync-at", "10"], ["--sync-at", "x=2026-01-01"], ["--set", "colour=blue"],
    ["--set", "max_power_w=-1"], ["--set", "friendly_nights=25:00-08:00"], ["--set", "nokey"],
    ["--plot", "x.png"], ["--button-at", "-3"], ["--hours", "1", "--plot", "/nonexistent/x.png"],
    ["--hours", "1", "--plot", "run.jpg"],
])
def test_bad_issue4_flags_get_usage_and_exit_2(args):
    r = run_sim(*args)
    assert r.rc == 2 and "usage:" in r.stderr and "Traceback" not in r.stderr


def test_bad_tariff_file_is_refused(tmp_path):
    bad = tmp_path / "t.json"
    bad.write_text('{"version": 1, "kind": "tou", "weekday": [[60, 100]]}')
    r = run_sim("--tariff", bad, "--hours", 1)
    assert r.rc == 2 and "weekday must start at 0" in r.stderr
    bad.write_text("{not json")
    r = run_sim("--tariff", bad, "--hours", 1)
    assert r.rc == 2 and "--tariff" in r.stderr


def test_an_image_of_the_first_layout_is_the_same_meter(tmp_path):
    """A 64 KiB image (ledger only, before settings, log and outbox existed)
    boots as the same meter and grows only when the new partitions are written."""
    from conftest import mp_json
    img = tmp_path / "old.img"
    mp_json("tests/mp/sim/image_first_layout.py", img)
    assert img.stat().st_size == 65536
    r = run_sim("--flash", img, "--hours", 0.01, "--json")
    assert r.rc == 0, r.stderr
    boot = r.events[0]
    assert boot["new"] is False and boot["pulses"] == 7 and boot["credit"] == 4321 - 8
    assert 65536 < img.stat().st_size <= 104 * 1024   # grown as far as written
    again = run_sim("--flash", img, "--hours", 0.01, "--json")   # and it opens again
    assert again.rc == 0 and again.events[0]["pulses"] == 7


def test_command_line_mistakes_are_usage_errors_and_an_image_has_one_simulator(tmp_path):
    """A bad load-profile line, a tariff the meter has already: exit 2 with
    the reason. A second simulator on a flash image in use: exit 4, the image
    untouched (two would overwrite each other's records)."""
    import time
    csv = tmp_path / "p.csv"
    csv.write_text("time,watts\n0,100\n01:00,lots\n")
    r = run_sim("--load-profile", csv, "--hours", 1)
    assert r.rc == 2 and "line 3" in r.stderr and "Traceback" not in r.stderr
    tf = tmp_path / "t.json"
    tf.write_text(json.dumps({"version": 2, "activate": 0, "kind": "flat", "price": 2100,
                              "standing_per_day": 0}))
    img = tmp_path / "m.img"
    assert run_sim("--flash", img, "--tariff", tf, "--hours", 0.1).rc == 0
    r = run_sim("--flash", img, "--tariff", tf, "--hours", 0.1)
    assert r.rc == 2 and "version 2 is not above the meter's 2" in r.stderr
    first = subprocess.Popen([sys.executable, str(ROOT / "tools" / "sim.py"), "--flash",
                              str(img), "--hours", "0.002", "--speed", "1"],
                             stdout=subprocess.DEVNULL)
    time.sleep(1.5)
    before = img.read_bytes()
    r = run_sim("--flash", img, "--hours", 1, "--load", 5000)
    assert r.rc == 4 and "in use by another simulator" in r.stderr
    assert first.wait(30) == 0
    assert run_sim("--flash", img, "--hours", 0.01).rc == 0     # free again
    assert len(before) == len(img.read_bytes())


def test_a_heap_too_small_or_malformed_is_said_plainly():
    r = run_sim("--heap", "64k", "--hours", 0.1)
    assert r.rc == 5 and "out of memory in a 64k heap" in r.stderr
    assert "MemoryError" not in r.stdout + r.stderr
    r = run_sim("--heap", "lots", "--hours", 0.1)
    assert r.rc == 2 and "heap is a size like 512k" in r.stderr


def test_the_keypad_button_key_reconnects_a_ready_relay():
    r = run_sim("--credit", 0, "--load", 1000, "--hours", 0.1, "--topup", "10:500",
                "--keys", "20:button", "--json")
    assert r.rc == 0
    ev = [(e["t"], e["event"], e.get("reason") or e.get("detail")) for e in r.events]
    assert (20.0, "relay", "button") in ev and (20.0, "button", "reconnect") in ev
    assert run_sim("--keys", "5:12a4").rc == 2


def test_a_vend_retried_after_32_later_vends_does_not_land_again():
    """Issue 17 item 2, the issue's own run: 33 top-ups, then the first one
    again. With the head-end's vend sequence number it is refused (4,300,
    not 4,400); the same run by reference only shows why the number exists."""
    vends = []
    for i in range(1, 34):
        vends += ["--topup", "%d:100:REF-%d:%d" % (i * 10, i, i)]
    r = run_sim("--credit", 1000, "--load", 0, "--hours", 0.2, "--json", *vends,
                "--topup", "400:100:REF-1:1")
    assert r.rc == 0, r.stderr
    assert r.last["credit"] == 4300
    late = [e for e in r.events if e["event"] == "topup_rejected"]
    assert len(late) == 1 and "stale vend 1" in late[0]["reason"], late
    again = run_sim("--credit", 1000, "--load", 0, "--hours", 0.2, "--json", *vends,
                    "--topup", "400:100:REF-X:33")
    assert again.last["credit"] == 4300       # a used number under a new reference
