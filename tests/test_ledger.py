"""The credit ledger on simulated NOR flash, run inside MicroPython."""

import pytest

from conftest import mp_json


def test_blank_partition_becomes_a_new_ledger_and_reboot_keeps_state():
    r = mp_json("tests/mp/ledger/blank_partition_and_reboot.py")
    assert r["new"]["created"] and r["new"]["credit"] == 5000
    assert r["boot"]["created"] is False
    # 9 pulses at 2000/kWh and 1600 imp/kWh = 11.25 minor units
    assert r["live"]["billed"] == 11 and r["live"]["credit"] == 5000 + 700 - 11
    for k in ("credit", "pulses", "billed", "topups", "rem", "price", "count"):
        assert r["boot"][k] == r["live"][k], k


def test_duplicate_topup_is_rejected_before_and_after_reboot():
    r = mp_json("tests/mp/ledger/duplicate_topup.py")
    assert len(r["errs"]) == 3 and all("duplicate" in e for e in r["errs"])
    assert len(r["bad"]) == 6
    assert r["credit"] == 500 and r["count"] == 1


def test_foreign_image_is_a_fault_and_is_never_formatted():
    r = mp_json("tests/mp/ledger/foreign_image.py")
    assert "no ledger" in r["msg"] and "not formatting" in r["msg"]
    assert r["untouched"] and r["writes"] == 1


def test_newer_format_version_is_a_fault():
    r = mp_json("tests/mp/ledger/newer_format_version.py")
    assert "version 7" in r["msg"]


def test_every_checkpoint_damaged_is_a_fault_not_a_reformat():
    r = mp_json("tests/mp/ledger/every_checkpoint_damaged.py")
    assert "no intact ledger" in r["msg"]


@pytest.mark.parametrize("price,imp", [(1999, 1600), (1, 1600), (12345, 1000),
                                       (997, 3200), (2000, 1601), (100003, 6400)])
def test_a_million_pulses_bill_exactly(price, imp):
    r = mp_json("tests/mp/ledger/a_million_pulses_bill_exactly.py", price, imp)
    exact = 1000000 * price // imp
    assert r["live"] == exact and r["boot"] == exact
    assert r["rem"] == 1000000 * price % imp
    assert r["credit"] == 10 ** 12 - exact and r["pulses"] == 1000000


def test_loss_bound_sets_how_often_energy_is_written():
    r = mp_json("tests/mp/ledger/loss_bound.py")
    # 1 Wh bound at 0.625 Wh/pulse: at most one pulse may wait -> write each
    # pulse (a record is two program operations: its body, then the tag
    # that commits it)
    assert r["1000"] == [1, 400, 0]
    assert r["625"] == [1, 400, 0]
    assert r["10000"][0] == 16 and r["10000"][1] < 40   # 10 Wh: every 16 pulses
    assert r["10000"][2] * 625 <= 10000
    assert r["100"][0] == 1   # bound below one pulse: one pulse is the atom


def test_crossing_zero_credit_is_written_at_once():
    r = mp_json("tests/mp/ledger/zero_credit_written_at_once.py")
    assert r["credit"] == 0 and r["pending"] == 0


def test_wear_is_levelled_across_the_partition():
    r = mp_json("tests/mp/ledger/wear.py", 60000)
    e = r["erases"]
    assert min(e) >= 3, e
    assert max(e) - min(e) <= 1, e


def test_boot_cost_does_not_grow_with_history():
    short = mp_json("tests/mp/ledger/wear.py", 100)["reads"]
    long = mp_json("tests/mp/ledger/wear.py", 60000)["reads"]
    print(short, long)
    # every header plus one sector through the boot window, whatever the history
    for n in short + long:
        assert n <= 16 * 16 + 2 * 4096


def test_reads_a_ledger_written_in_the_first_format():
    r = mp_json("tests/mp/ledger/first_format.py")
    # 4000 + 500 top-up - 2 pulses at 2000/kWh (2.5 minor units: 2, rem carried)
    assert r["credit"] == 4498 and r["topups"] == 500 and r["pulses"] == 802
    assert r["billed"] == 1002 and r["created"] is False


def test_a_damaged_byte_anywhere_in_the_newest_sector_is_never_a_silent_loss():
    """Flash that goes bad (not a cut) under any byte of the newest sector:
    the ledger recovers the newest good state with every top-up, or says it
    is damaged; only the last record may look like a cut's torn write."""
    r = mp_json("tests/mp/ledger/damage.py")
    assert r["n"] > 1000
    assert r["fault"] == [] and r["lost_topup"] == [], r
    assert r["silent"] == [], r["silent"][:3]
    assert r["detected"] > 0


def _states(img, nsec=16, bs=4096):
    """(sector, [offsets of STATE records]) of the newest ledger sector of a
    sim image, walked with the firmware's own record parser (CPython)."""
    import struct
    import sys
    from conftest import ROOT
    sys.path.insert(0, str(ROOT))
    from firmware import records as R
    data = img.read_bytes()
    best = None
    for s in range(nsec):
        h = data[s * bs:s * bs + 16]
        if h[:4] == R.MAGIC:
            seq = struct.unpack("<I", h[8:12])[0]
            if best is None or seq > best[0]:
                best = (seq, s)
    sec = data[best[1] * bs:(best[1] + 1) * bs]
    off, states = 16, []
    while True:
        r = R.parse(sec, off)
        if r is None:
            return best[1], states
        if r[0] == R.TAG_STATE:
            states.append(off)
        off = r[2]


def test_a_damaged_checkpoint_keeps_the_topup_and_raises_the_alarm(tmp_path):
    """The issue's case: one byte of the newest sector's checkpoint goes bad.
    The meter reopens with the same credit, energy and top-ups, alarm
    `ledger` set, an `error` event, and selftest failing until cleared."""
    import subprocess
    import sys
    from conftest import ROOT, run_sim
    img = tmp_path / "m.img"
    r = run_sim("--flash", img, "--credit", 50000, "--load", 1000, "--hours", 2.5,
                "--topup", "3600:1046:PAY-9", "--json")
    assert r.rc == 0
    before = r.last
    sec, states = _states(img)
    data = bytearray(img.read_bytes())
    data[sec * 4096 + states[-2] + 20] ^= 0x5A      # inside the top-up's checkpoint
    img.write_bytes(bytes(data))

    def console(lines):
        p = subprocess.run([sys.executable, str(ROOT / "tools" / "sim.py"), "--console",
                            "--flash", str(img), "--pin", "2468"], input=lines,
                           capture_output=True, text=True, timeout=60)
        return p.stdout.splitlines()

    out = console("status\nlogin 2468\nselftest\nlog 6\n")
    st = dict(x.split("=", 1) for x in out if "=" in x and " " not in x)
    assert st["credit"] == str(before["credit"]) and st["topups"] == "1046", st
    assert st["energy_wh"] == "%.3f" % before["energy_wh"] and st["alarms"] == "ledger"
    assert "error: self-test failed: ledger" in out
    assert any("kind=error" in x and "detail=ledger damaged" in x for x in out), "\n".join(out)
    out = console("login 2468\nclear\nselftest\nstatus\n")
    assert out.count("ok") == 4 and "alarms=none" in out


def test_a_record_that_would_move_a_growing_register_back_is_refused():
    """Second line of defence behind the commit mark: a clock record that
    takes the billing clock back, or a checkpoint that takes back top-ups or
    billed money, is damage however well it checks. Boot stops before it,
    reports the damage, and the registers keep the last sane values."""
    r = mp_json("tests/mp/ledger/growing_register_moved_back.py")
    assert r["clock"] == [True, 2000000, 1]
    assert r["state"] == [True, 2000000, 1]


def test_a_vend_sequence_number_lands_once_however_late_its_retry():
    """Issue 17 item 2: references alone are remembered for 32 top-ups, so a
    retry after 32 later ones landed again. With the head-end's vend
    sequence, random orders, retries at any distance and reboots never
    apply a number twice; a number inside the window that was never used
    still applies; an older one is refused, never applied."""
    r = mp_json("tests/mp/ledger/vend_sequence_lands_once.py")
    assert r["double"] == 0 and r["missed"] == 0, r
    assert r["credit_is_applied"] and r["reboots"] > 20
    assert r["applied"] > 1000 and r["retries_refused"] > 200 and r["stale"] > 100
