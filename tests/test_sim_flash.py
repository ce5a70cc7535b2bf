"""The simulated NOR flash behaves like the chip the ledger will meet."""

from conftest import mp_json


def test_nor_semantics():
    r = mp_json("tests/mp/flash/nor.py")
    assert r["count"] == 4 and r["size"] == 4096
    assert r["blank"] == [0xFF] * 8
    assert r["after"] == [0x07, 0xF0]
    assert r["set_bit"] == "error"
    assert r["unchanged"] == [0x07, 0xF0]
    assert r["erased"] == [0xFF] * 8
    assert r["erases"] == [0, 1, 0, 0]
    assert r["erases2"] == [0, 1, 1, 0]
    assert r["oob"] == "error"


def test_power_cut_tears_the_nth_write():
    res = mp_json("tests/mp/flash/cut.py")
    assert None not in res, "the 3rd write must be cut"
    assert all(tail_ok for _, tail_ok in res)
    ks = {k for k, _ in res}
    assert len(ks) > 10, "tear point should vary with the seed: %s" % ks
    assert all(k < 64 for k in ks), "a torn write never lands whole"


def test_image_file_persists(tmp_path):
    img = tmp_path / "f.img"
    assert mp_json("tests/mp/flash/persist.py", img)["back"] == "abc"
    data = img.read_bytes()
    assert len(data) == 1024 and data[512 + 7:512 + 10] == b"abc"
