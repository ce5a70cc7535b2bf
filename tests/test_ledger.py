"""The credit ledger on simulated NOR flash, run inside MicroPython."""

import pytest

from conftest import mp_json

PRELUDE = """
import json, sys
from hal.sim.flash import SimFlash, PowerCut
from firmware.ledger import Ledger, LedgerFault, Rejected
from firmware import records as R
from firmware.ring import HDR_LEN
def flash(blocks=16, bs=4096, **kw):
    return SimFlash(None, bs, blocks, **kw)
def fault(f):
    try:
        Ledger(f)
        return "opened"
    except LedgerFault as e:
        return str(e)
def view(lg):
    return {"credit": lg.credit, "pulses": lg.pulses, "billed": lg.billed,
            "topups": lg.topups, "rem": lg.rem, "price": lg.price, "imp": lg.imp,
            "count": lg.topup_count, "created": lg.created}
"""


def test_blank_partition_becomes_a_new_ledger_and_reboot_keeps_state():
    r = mp_json(PRELUDE + """
f = flash()
a = Ledger(f, 1600, 2000, 5000)
new = view(a)
a.consume(3); a.consume(5)
a.topup("R-1", 700)
a.consume(1)
live = view(a)
b = Ledger(f, 1600, 9999, 1)   # new-meter settings must not override flash
print(json.dumps({"new": new, "live": live, "boot": view(b)}))
""")
    assert r["new"]["created"] and r["new"]["credit"] == 5000
    assert r["boot"]["created"] is False
    # 9 pulses at 2000/kWh and 1600 imp/kWh = 11.25 minor units
    assert r["live"]["billed"] == 11 and r["live"]["credit"] == 5000 + 700 - 11
    for k in ("credit", "pulses", "billed", "topups", "rem", "price", "count"):
        assert r["boot"][k] == r["live"][k], k


def test_duplicate_topup_is_rejected_before_and_after_reboot():
    r = mp_json(PRELUDE + """
f = flash()
a = Ledger(f, 1600, 2000, 0)
a.topup("TX-1", 500)
errs = []
for amount in (500, 1):
    try:
        a.topup("TX-1", amount)
    except Rejected as e:
        errs.append(str(e))
b = Ledger(f)
try:
    b.topup("TX-1", 500)
except Rejected as e:
    errs.append(str(e))
bad = []
for ref, amt in (("", 5), ("x" * 65, 5), ("ok", 0), ("ok", -3), ("ok", 2**32), ("ok", 1.5)):
    try:
        b.topup(ref, amt)
    except Rejected as e:
        bad.append(str(e))
print(json.dumps({"errs": errs, "bad": bad, "credit": b.credit, "count": b.topup_count}))
""")
    assert len(r["errs"]) == 3 and all("duplicate" in e for e in r["errs"])
    assert len(r["bad"]) == 6
    assert r["credit"] == 500 and r["count"] == 1


def test_foreign_image_is_a_fault_and_is_never_formatted():
    r = mp_json(PRELUDE + """
f = flash(4, 4096)
f.writeblocks(2, b"FAT16 image, somebody's data", 0)
before = bytes(f.data)
print(json.dumps({"msg": fault(f), "untouched": bytes(f.data) == before,
                  "writes": f.writes}))
""")
    assert "no ledger" in r["msg"] and "not formatting" in r["msg"]
    assert r["untouched"] and r["writes"] == 1


def test_newer_format_version_is_a_fault():
    r = mp_json(PRELUDE + """
import struct
from binascii import crc32
f = flash(4, 4096)
Ledger(f, 1600, 2000, 100)
h = R.MAGIC + struct.pack("<HHI", 7, 0, 99)
f.ioctl(6, 1)
f.writeblocks(1, h + struct.pack("<I", crc32(h)), 0)
print(json.dumps({"msg": fault(f)}))
""")
    assert "version 7" in r["msg"]


def test_every_checkpoint_damaged_is_a_fault_not_a_reformat():
    r = mp_json(PRELUDE + """
f = flash(4, 4096)
a = Ledger(f, 1600, 2000, 100)
for i in range(3000):
    a.consume(1)          # several sectors written
# damage every checkpoint: clear the tag of both copies of each sector's STATE
n = len(R.state(a._values(), a.refs))
for s in range(4):
    f.writeblocks(s, b"\\x00", HDR_LEN)
    f.writeblocks(s, b"\\x00", HDR_LEN + n)
print(json.dumps({"msg": fault(f)}))
""")
    assert "no intact ledger" in r["msg"]


@pytest.mark.parametrize("price,imp", [(1999, 1600), (1, 1600), (12345, 1000),
                                       (997, 3200), (2000, 1601), (100003, 6400)])
def test_a_million_pulses_bill_exactly(price, imp):
    r = mp_json(PRELUDE + """
price, imp = int(sys.argv[1]), int(sys.argv[2])
f = flash()
a = Ledger(f, imp, price, 10 ** 12, loss_bound_mwh=10 ** 9)  # batch writes
total, step = 0, 1
while total < 1000000:
    n = min(step, 1000000 - total)
    a.consume(n)
    total += n
    step = step % 37 + 1
a.flush()
b = Ledger(f)
print(json.dumps({"live": a.billed, "rem": a.rem, "boot": b.billed, "credit": b.credit,
                  "pulses": b.pulses}))
""", price, imp)
    exact = 1000000 * price // imp
    assert r["live"] == exact and r["boot"] == exact
    assert r["rem"] == 1000000 * price % imp
    assert r["credit"] == 10 ** 12 - exact and r["pulses"] == 1000000


def test_loss_bound_sets_how_often_energy_is_written():
    r = mp_json(PRELUDE + """
out = {}
for bound in (1000, 625, 10000, 100):
    f = flash()
    a = Ledger(f, 1600, 2000, 10 ** 6, loss_bound_mwh=bound)
    w = f.writes
    worst = 0
    for i in range(200):
        a.consume(1)
        worst = max(worst, a.pending)
    out[str(bound)] = [a.flush_every, f.writes - w, worst]
print(json.dumps(out))
""")
    # 1 Wh bound at 0.625 Wh/pulse: at most one pulse may wait -> write each
    # pulse (a record is two program operations: its body, then the tag
    # that commits it)
    assert r["1000"] == [1, 400, 0]
    assert r["625"] == [1, 400, 0]
    assert r["10000"][0] == 16 and r["10000"][1] < 40   # 10 Wh: every 16 pulses
    assert r["10000"][2] * 625 <= 10000
    assert r["100"][0] == 1   # bound below one pulse: one pulse is the atom


def test_crossing_zero_credit_is_written_at_once():
    r = mp_json(PRELUDE + """
f = flash()
a = Ledger(f, 1600, 1600, 10, loss_bound_mwh=10 ** 6)   # 1 minor unit per pulse
for i in range(10):
    a.consume(1)
b = Ledger(f)
print(json.dumps({"credit": b.credit, "pending": a.pending}))
""")
    assert r["credit"] == 0 and r["pending"] == 0


WEAR = PRELUDE + """
f = flash(16, 4096)
a = Ledger(f, 1600, 2000, 10 ** 9)
for i in range(int(sys.argv[1])):
    a.consume(1)
    if i % 5000 == 0:
        a.topup("t%d" % i, 1000)
boot_reads = []
for k in range(2):
    f.bytes_read = 0
    Ledger(f)
    boot_reads.append(f.bytes_read)
print(json.dumps({"erases": f.erases, "reads": boot_reads}))
"""


def test_wear_is_levelled_across_the_partition():
    r = mp_json(WEAR, 60000)
    e = r["erases"]
    assert min(e) >= 3, e
    assert max(e) - min(e) <= 1, e


def test_boot_cost_does_not_grow_with_history():
    short = mp_json(WEAR, 100)["reads"]
    long = mp_json(WEAR, 60000)["reads"]
    print(short, long)
    # every header plus one sector through the boot window, whatever the history
    for n in short + long:
        assert n <= 16 * 16 + 2 * 4096


def test_reads_a_ledger_written_in_the_first_format():
    r = mp_json(PRELUDE + """
import struct
from binascii import crc32
from firmware import ring
f = flash(4, 4096)
f.ioctl(6, 0)
f.writeblocks(0, ring.header(R.MAGIC, 1), 0)
payload = struct.pack("<qQqqIIIIB", 4000, 800, 1000, 0, 0, 2000, 1600, 0, 0)
b = struct.pack("<BH", 0x53, len(payload)) + payload
s1 = b + struct.pack("<I", crc32(b))
t = struct.pack("<BI", 0x54, 500) + b"12345678"
t += struct.pack("<H", crc32(t) & 0xFFFF)
e = bytes((0x45, 2))
e += struct.pack("<H", crc32(e) & 0xFFFF)
f.writeblocks(0, s1 + t + e, 16)
lg = Ledger(f)
print(json.dumps(view(lg)))
""")
    # 4000 + 500 top-up - 2 pulses at 2000/kWh (2.5 minor units: 2, rem carried)
    assert r["credit"] == 4498 and r["topups"] == 500 and r["pulses"] == 802
    assert r["billed"] == 1002 and r["created"] is False


DAMAGE = PRELUDE + """
import sys
base = flash(4, 4096)
a = Ledger(base, 1600, 2000, 100000)
for i in range(1100):
    a.consume(1)          # past the first sector
a.topup("T-1", 700)
for i in range(100):
    a.consume(1)
a.set_price(2100)         # a checkpoint in place
for i in range(50):
    a.consume(1)
a.topup("T-2", 900)
for i in range(20):
    a.consume(1)
a.flush()
want = view(a)
sec, tail = a.journal.cur, a.journal.tail
img = bytes(base.data)
out = {"lost_topup": [], "silent": [], "detected": 0, "unchanged": 0, "torn_like": 0,
       "n": 0, "fault": []}
step = int(sys.argv[1]) if len(sys.argv) > 1 else 1
for off in range(0, tail, step):
    f = flash(4, 4096)
    f.data[:] = img
    f.data[sec * 4096 + off] ^= 0x5A
    out["n"] += 1
    try:
        lg = Ledger(f)
    except LedgerFault as e:
        out["fault"].append([off, str(e)])
        continue
    got = view(lg)
    if got["topups"] != want["topups"] or got["count"] != want["count"]:
        out["lost_topup"].append(off)
    if got == dict(want, created=got["created"]):
        out["unchanged"] += 1
    elif lg.damage:
        out["detected"] += 1
    elif want["pulses"] - got["pulses"] <= 1 and off >= tail - 8:
        out["torn_like"] += 1     # the last record: a cut could have torn it
    else:
        out["silent"].append([off, got, want])
print(json.dumps(out))
"""


def test_a_damaged_byte_anywhere_in_the_newest_sector_is_never_a_silent_loss():
    """Flash that goes bad (not a cut) under any byte of the newest sector:
    the ledger recovers the newest good state with every top-up, or says it
    is damaged; only the last record may look like a cut's torn write."""
    r = mp_json(DAMAGE)
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
    r = mp_json(PRELUDE + """
out = {}
for case in ("clock", "state"):
    f = flash(4, 4096)
    a = Ledger(f, 1600, 2000, 100000)
    a.note_time(2000000, False)
    a.topup("T-1", 700)
    want = view(a)
    if case == "clock":
        a.journal.append(R.clock(1000))                 # back to 1970
    else:
        v = a._values()
        v[R.NAMES.index("topups")] = 0               # the top-up undone
        v[R.NAMES.index("credit")] = -5000000
        a.journal.append(R.state(v, []))
    for i in range(3):
        a.consume(1)
    a.flush()
    b = Ledger(f)
    out[case] = [view(b) == dict(want, created=False), b.time_s, len(b.damage)]
print(json.dumps(out))
""")
    assert r["clock"] == [True, 2000000, 1]
    assert r["state"] == [True, 2000000, 1]


def test_a_vend_sequence_number_lands_once_however_late_its_retry():
    """Issue 17 item 2: references alone are remembered for 32 top-ups, so a
    retry after 32 later ones landed again. With the head-end's vend
    sequence, random orders, retries at any distance and reboots never
    apply a number twice; a number inside the window that was never used
    still applies; an older one is refused, never applied."""
    r = mp_json(PRELUDE + """
from hal.sim.rng import Rng
rng = Rng(11)
f = flash(4, 4096)
a = Ledger(f, 1600, 2000, 0)
used, out = set(), {"applied": 0, "retries_refused": 0, "stale": 0, "double": 0,
                    "missed": 0, "reboots": 0}
top = 0
for i in range(3000):
    k = rng.below(10)
    if k < 5:
        top += 1 + (rng.below(40) if rng.below(8) == 0 else 0)   # new, sometimes a jump
        v = top
    else:
        v = max(1, top - rng.below(80))                        # a retry or a late vend
    try:
        a.topup("R%d-%d" % (v, i), 1, vseq=v)
        if v in used:
            out["double"] += 1
        used.add(v)
        out["applied"] += 1
    except Rejected as e:
        if "stale" in str(e):
            out["stale"] += 1
        elif v in used:
            out["retries_refused"] += 1
        else:
            out["missed"] += 1
    if rng.below(50) == 0:
        a = Ledger(f)
        out["reboots"] += 1
out["credit_is_applied"] = a.credit == out["applied"]
print(json.dumps(out))
""")
    assert r["double"] == 0 and r["missed"] == 0, r
    assert r["credit_is_applied"] and r["reboots"] > 20
    assert r["applied"] > 1000 and r["retries_refused"] > 200 and r["stale"] > 100
