"""Pulses -> energy and power, in MicroPython."""

from conftest import mp_json


def test_meter_counts_and_estimates_power():
    r = mp_json("tests/mp/meter/meter.py")
    assert r["first"] == 0 and r["n"] == 10
    assert r["p"] == 1000
    assert r["p_overdue"] == 100
    assert r["p_two"] == 4500          # 2 pulses in 1 s
    assert r["p_forgot"] == 0
    assert r["back"] == "error"
    assert r["wh"] == ["0.625", "24000.000", "333.333"]
    assert r["mwh"] == 3000
