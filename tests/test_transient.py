"""Transient modules (firmware/transient.py) on the MicroPython unix port."""

from conftest import MP_DIR, mp_json


def test_a_transient_module_is_dropped_after_each_call_even_on_error():
    r = mp_json(MP_DIR / "transient" / "drop.py")
    assert r["value"] == 1884 and r["again"] == 1885
    assert r["gone"] and r["gone_after_error"]
    assert r["error"] == "mqtt_port must be 1..65535"
    assert r["policy_kept"]
    # what stays is its interned names, not its tables and code (~7 KB loaded)
    assert r["kept_bytes"] < 2048
