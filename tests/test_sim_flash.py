"""The simulated NOR flash behaves like the chip the ledger will meet."""

from conftest import mp_json

NOR = """
import json
from hal.sim.flash import SimFlash, PowerCut, NorError
f = SimFlash(None, 4096, 4, seed=1)
out = {"count": f.ioctl(4, 0), "size": f.ioctl(5, 0)}
buf = bytearray(8)
f.readblocks(1, buf, 100)
out["blank"] = list(buf)
f.writeblocks(1, b"\\x0f\\xf0", 100)
f.writeblocks(1, b"\\x07\\xf0", 100)          # clearing more bits is fine
f.readblocks(1, buf, 100)
out["after"] = list(buf[:2])
try:
    f.writeblocks(1, b"\\xff\\xff", 100)      # 0 -> 1 without erase
    out["set_bit"] = "accepted"
except NorError as e:
    out["set_bit"] = "error"
f.readblocks(1, buf, 100)
out["unchanged"] = list(buf[:2])
f.ioctl(6, 1)
f.readblocks(1, buf, 100)
out["erased"] = list(buf)
out["erases"] = list(f.erases)
f.writeblocks(2, b"\\x00" * 10)              # plain form erases first
out["erases2"] = f.erases
try:
    f.readblocks(4, buf, 0)
    out["oob"] = "accepted"
except OSError:
    out["oob"] = "error"
print(json.dumps(out))
"""


def test_nor_semantics():
    r = mp_json(NOR)
    assert r["count"] == 4 and r["size"] == 4096
    assert r["blank"] == [0xFF] * 8
    assert r["after"] == [0x07, 0xF0]
    assert r["set_bit"] == "error"
    assert r["unchanged"] == [0x07, 0xF0]
    assert r["erased"] == [0xFF] * 8
    assert r["erases"] == [0, 1, 0, 0]
    assert r["erases2"] == [0, 1, 1, 0]
    assert r["oob"] == "error"


CUT = """
import json, sys
from hal.sim.flash import SimFlash, PowerCut
res = []
for seed in range(40):
    f = SimFlash(None, 512, 2, seed=seed, cut_after_writes=3)
    data = bytes(range(64))
    f.writeblocks(0, data, 0)
    f.writeblocks(0, data, 64)
    try:
        f.writeblocks(0, data, 128)
        res.append(None)
    except PowerCut:
        buf = bytearray(64)
        f.readblocks(0, buf, 128)
        # how many leading bytes landed intact; the rest must be untouched
        k = 0
        while k < 64 and buf[k] == data[k]:
            k += 1
        tail_ok = all(b == 0xFF for b in buf[k + 1:])
        res.append([k, tail_ok])
print(json.dumps(res))
"""


def test_power_cut_tears_the_nth_write():
    res = mp_json(CUT)
    assert None not in res, "the 3rd write must be cut"
    assert all(tail_ok for _, tail_ok in res)
    ks = {k for k, _ in res}
    assert len(ks) > 10, "tear point should vary with the seed: %s" % ks
    assert all(k < 64 for k in ks), "a torn write never lands whole"


PERSIST = """
import json, sys
from hal.sim.flash import SimFlash
p = sys.argv[1]
f = SimFlash(p, 512, 2)
f.writeblocks(1, b"abc", 7)
f.close()
g = SimFlash(p, 512, 2)
buf = bytearray(3)
g.readblocks(1, buf, 7)
print(json.dumps({"back": buf.decode()}))
"""


def test_image_file_persists(tmp_path):
    img = tmp_path / "f.img"
    assert mp_json(PERSIST, img)["back"] == "abc"
    data = img.read_bytes()
    assert len(data) == 1024 and data[512 + 7:512 + 10] == b"abc"
