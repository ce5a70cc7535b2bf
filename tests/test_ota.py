"""Signed firmware updates over MQTT (firmware/ota.py, main.py, tools/release.py),
on the device path: main.py -> hal/esp32 -> firmware/ with the ESP32 stand-ins,
a real Mosquitto, releases built with real mpy-cross and signed by meterctl."""

import json
import random
import sys
import time

import pytest

import mp
from conftest import ROOT
from device import Device
from test_device import status, wait_for
from test_mqtt import meterctl

sys.path.insert(0, str(ROOT / "tools"))
import release  # noqa: E402


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    release.new_key(d / "release.pem")
    release.new_key(d / "other.pem")
    return d


@pytest.fixture(scope="module")
def releases(keys, tmp_path_factory):
    """Releases built once: good ones, an older one, one signed by another
    key, and one that cannot start (its app module raises at import)."""
    d = tmp_path_factory.mktemp("releases")
    built = {v: release.modules(v) for v in ("1.1.0", "0.9.0")}
    out = {}
    for name, v, key, files in (
            ("1.1.0", "1.1.0", "release.pem", built["1.1.0"]),
            ("0.9.0", "0.9.0", "release.pem", built["0.9.0"]),
            ("forged", "1.2.0", "other.pem", built["1.1.0"]),
            ("broken", "1.3.0", "release.pem",
             [(p, b"raise ImportError('broken on purpose')\n" if p == "firmware/app.mpy" else b)
              for p, b in built["1.1.0"]])):
        out[name] = release.make(v, keys / key, d / name, files)
    return out


def releases_dir(releases, name):
    return ["--release", str(releases[name])]


def ota_log(dev):
    return [x.split("detail=", 1)[1] for x in dev.cmd("log 100") if "kind=ota" in x]


def booted_with_key(tmp_path, broker, keys, **kw):
    reg = tmp_path / "headend.json"
    sec = tmp_path / "m1.json"
    r = meterctl(broker.addr, reg, "provision", "--id", "m1", "--out", sec, "--pin", "2468",
                 "--release-key", keys / "release.pem")
    assert r.returncode == 0, r.stderr
    secrets = json.loads(sec.read_text())
    assert len(bytes.fromhex(secrets["release_key"])) == 384
    dev = Device(tmp_path / "dev", wifi={"assoc_ms": 0}, **kw)
    dev.provision(secrets, broker.addr)
    dev.boot()
    assert wait_for(lambda: status(dev)["mqtt"] == "connected", 30), status(dev)
    return reg, dev


def update(broker, reg, version, releases, name):
    return meterctl(broker.addr, reg, "update", "m1", version, "--release",
                    releases[name], timeout=120)


def reset_done(dev, timeout=60):
    return wait_for(lambda: dev.report().get("resets") == ["machine.reset"], timeout)


def test_the_whole_update_on_the_device_lane(broker, tmp_path, keys, releases):
    """32-bit interpreter: offered 1.1.0, the meter fetches, checks, stages
    and reboots into it; it proves itself and stays; billing goes on across
    the switch; older and forged releases are refused and change nothing."""
    reg, dev = booted_with_key(tmp_path, broker, keys, pulses_per_s=5)
    try:
        assert status(dev)["fw"] == "1.0.0"
        older = update(broker, reg, "0.9.0", releases, "0.9.0")
        assert older.returncode == 1 and "not newer" in older.stdout, older.stdout
        forged = update(broker, reg, "1.2.0", releases, "forged")
        assert forged.returncode == 0, forged.stdout + forged.stderr
        assert wait_for(lambda: status(dev)["update"] == "failed 1.2.0", 20), status(dev)
        assert "bad signature" in ota_log(dev)
        was = status(dev)
        t0 = time.time()
        ok = update(broker, reg, "1.1.0", releases, "1.1.0")
        assert ok.returncode == 0 and "update=" in ok.stdout, ok.stdout + ok.stderr
        assert reset_done(dev), status(dev)
        took = time.time() - t0
        dev.boot(power_on=False)
        st = status(dev)
        assert st["fw"] == "1.1.0", st
        assert wait_for(lambda: "confirmed 1.1.0" in ota_log(dev), 60), ota_log(dev)
        state = json.loads((dev.dir / "ota.json").read_text())
        assert state["current"] == "1.1.0" and state["trial"] is None
        assert not (dev.dir / "ota").exists()
        log = ota_log(dev)
        assert log.index("start 1.1.0") < log.index("staged 1.1.0") < log.index("confirmed 1.1.0")
        print("\nupdate of %d bytes: offered to rebooted in %.1f s"
              % ((releases["1.1.0"] / "bundle").stat().st_size, took))
        # billing went on across the switch: the same ledger, nothing lost or made up
        after = status(dev)
        assert int(after["pulses"]) >= int(was["pulses"]) > 0
        assert int(after["credit"]) + int(after["billed"]) == \
            int(was["credit"]) + int(was["billed"])
    finally:
        dev.stop()


def intact_versions(dev):
    """What main.py would boot: each version ota.json names is whole."""
    st = json.loads((dev.dir / "ota.json").read_text()) if (dev.dir / "ota.json").exists() else {}
    import hashlib
    for v in (st.get("current"), st.get("previous"), st.get("trial")):
        if not v:
            continue
        index = json.loads((dev.dir / "v" / v / "index.json").read_text())
        for path, size, digest in index["files"]:
            data = (dev.dir / "v" / v / path).read_bytes()
            assert len(data) == size and hashlib.sha256(data).hexdigest() == digest, path
    return st


def chunks_on_flash(st):
    """(k, n) from `update=1.1.0 k/n`, or None."""
    parts = st.get("update", "").split(" ")
    if len(parts) == 2 and "/" in parts[1]:
        k, n = parts[1].split("/")
        return int(k), int(n)
    return None


def cut_when(dev, pred, timeout=60):
    """The power goes as soon as the meter's status satisfies pred."""
    end = time.time() + timeout
    while time.time() < end:
        try:
            st = status(dev)
        except AssertionError:
            if dev.report().get("resets") == ["machine.reset"]:
                return None              # it got there and reset itself first
            raise
        if pred(st):
            dev.stop()
            return st
    raise AssertionError("never came: %r" % status(dev))


def boot_checked(dev):
    dev.boot(power_on=True)
    st = status(dev)
    assert st["fw"] in ("1.0.0", "1.1.0"), st
    intact_versions(dev)
    return st


def test_power_cuts_during_download_check_and_switch(broker, tmp_path, keys, releases):
    """Unix port (64-bit): the power goes at three random points of the fetch,
    right after it while the release is checked and unpacked, and once while
    the new version is on trial. Every boot runs a whole, checked version
    (1.0.0 or 1.1.0, never a mix), the fetch goes on from the chunks already
    on flash, and the meter ends on 1.1.0, confirmed."""
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    reg, dev = booted_with_key(tmp_path, broker, keys, interp=mp.micropython())
    try:
        ok = update(broker, reg, "1.1.0", releases, "1.1.0")
        assert ok.returncode == 0, ok.stdout + ok.stderr
        n = len(release.chunks(releases["1.1.0"]))
        targets = sorted(rng.sample(range(1, n - 1), 3))
        for target in targets:
            seen = cut_when(dev, lambda st: (chunks_on_flash(st) or (0, 0))[0] >= target)
            assert seen is not None, "the whole fetch went by between two reads"
            had = chunks_on_flash(seen)[0]
            if target == targets[0]:         # and the chunk being written was torn
                with open(dev.dir / "ota" / "bundle", "ab") as f:
                    f.write(bytes(rng.randrange(256) for _ in range(700)))
            st = boot_checked(dev)
            assert st["fw"] == "1.0.0"
            assert (chunks_on_flash(st) or (n, n))[0] >= had, (seed, had, st["update"])
        # the last chunk is in: cut while the bundle is checked and unpacked
        at_check = cut_when(dev, lambda st: chunks_on_flash(st) == (n, n)
                            or st.get("update", "").startswith("done")) is not None
        if at_check:
            time.sleep(rng.uniform(0, 0.2))
            dev.stop()
        st = boot_checked(dev)
        if st["fw"] == "1.0.0":          # it finishes, and resets into the new one
            assert reset_done(dev), (seed, status(dev), ota_log(dev))
            st = boot_checked(dev)
        assert st["fw"] == "1.1.0", (seed, st, ota_log(dev))
        time.sleep(rng.uniform(0, 8))        # and once while the new one is on trial
        dev.stop()
        assert boot_checked(dev)["fw"] == "1.1.0"
        assert wait_for(lambda: "confirmed 1.1.0" in ota_log(dev), 60), \
            (seed, ota_log(dev), (dev.dir / "ota.json").read_text())
        assert intact_versions(dev)["current"] == "1.1.0"
        print("\nseed %d: power cut at chunks %s of %d, %s, and on trial"
              % (seed, targets, n, "while checking and unpacking" if at_check
                 else "(the check was over before a cut could land)"))
    finally:
        dev.stop()


def test_a_release_that_cannot_start_goes_back_by_itself(broker, tmp_path, keys, releases):
    """Signed and whole, but its app module raises at import: main.py marks
    it failed and resets; the meter runs 1.0.0 again and logs the rollback."""
    reg, dev = booted_with_key(tmp_path, broker, keys, interp=mp.micropython())
    try:
        assert update(broker, reg, "1.3.0", releases, "broken").returncode == 0
        assert reset_done(dev)
        dev.boot(power_on=False, wait_for=None)     # the trial: it fails and resets
        assert reset_done(dev), dev.stderr_tail()
        dev.boot(power_on=False)
        assert status(dev)["fw"] == "1.0.0"
        assert "rollback 1.3.0" in ota_log(dev)
        st = intact_versions(dev)
        assert st["trial"] is None and st.get("current") is None
    finally:
        dev.stop()


def test_a_trial_that_never_reaches_the_head_end_goes_back(broker, tmp_path, keys, releases):
    """1.1.0 boots but the broker is gone: past `ota_deadline_s` the meter
    goes back to the confirmed version by itself."""
    reg, dev = booted_with_key(tmp_path, broker, keys, interp=mp.micropython())
    try:
        assert dev.cmd("login 2468")[-1] == "ok"
        assert dev.cmd("set ota_deadline_s 30")[-2:] == ["ota_deadline_s=30", "ok"]
        assert update(broker, reg, "1.1.0", releases, "1.1.0").returncode == 0
        assert reset_done(dev)
        broker.stop()
        dev.boot(power_on=False)
        assert status(dev)["fw"] == "1.1.0"
        assert reset_done(dev, 60)
        dev.boot(power_on=False)
        assert status(dev)["fw"] == "1.0.0"
        assert "deadline 1.1.0" in ota_log(dev)
    finally:
        dev.stop()


def test_unsigned_heads_corrupted_and_truncated_chunks_are_refused(broker, tmp_path, keys,
                                                                   releases):
    """A head without a signature, and a chunk that does not match the signed
    head, are refused and logged; the whole release afterwards goes through."""
    reg, dev = booted_with_key(tmp_path, broker, keys, interp=mp.micropython())
    try:
        unsigned = tmp_path / "unsigned"
        unsigned.mkdir()
        head = (releases["1.1.0"] / "head").read_bytes()
        (unsigned / "head").write_bytes(head[:head.rfind(b"\n")])     # no signature line
        (unsigned / "bundle").write_bytes((releases["1.1.0"] / "bundle").read_bytes())
        r = meterctl(broker.addr, reg, "update", "m1", "1.1.0", "--release", unsigned,
                     timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        assert wait_for(lambda: status(dev)["update"] == "failed 1.1.0", 30), status(dev)
        assert "unsigned" in ota_log(dev)
        for name, spoil in (("corrupt", lambda b: b[:5000] + bytes([b[5000] ^ 1]) + b[5001:]),
                            ("short", lambda b: b[:-10])):
            bad = tmp_path / name
            bad.mkdir()
            (bad / "head").write_bytes((releases["1.1.0"] / "head").read_bytes())
            (bad / "bundle").write_bytes(spoil((releases["1.1.0"] / "bundle").read_bytes()))
            r = meterctl(broker.addr, reg, "update", "m1", "1.1.0", "--release", bad, timeout=120)
            assert r.returncode == 0, r.stdout + r.stderr
            assert wait_for(lambda: status(dev)["update"] == "failed 1.1.0", 30), status(dev)
            n = 5000 // release.CHUNK if name == "corrupt" else len(release.chunks(bad)) - 1
            assert ota_log(dev).count("bad chunk %d" % n) == 3, ota_log(dev)
            assert status(dev)["fw"] == "1.0.0"
        assert update(broker, reg, "1.1.0", releases, "1.1.0").returncode == 0
        assert reset_done(dev)
    finally:
        dev.stop()


def test_a_broker_restart_in_the_middle_of_a_fetch(broker, tmp_path, keys, releases):
    """The broker goes down half way through (its retained chunks persist):
    the meter reconnects, subscribes again and goes on from its chunks."""
    reg, dev = booted_with_key(tmp_path, broker, keys, interp=mp.micropython())
    try:
        assert update(broker, reg, "1.1.0", releases, "1.1.0").returncode == 0
        end = time.time() + 30
        while (chunks_on_flash(status(dev)) or (0, 0))[0] < 10 and time.time() < end:
            pass
        broker.stop()
        had = chunks_on_flash(status(dev))
        assert had and had[0] < had[1], had       # stopped in the middle
        time.sleep(2)
        assert chunks_on_flash(status(dev)) == had
        broker.start()
        assert reset_done(dev), (status(dev), ota_log(dev))
        dev.boot(power_on=False)
        assert status(dev)["fw"] == "1.1.0"
        assert "bad chunk" not in " ".join(ota_log(dev))
    finally:
        dev.stop()


def test_meterctl_release_commands_refuse_bad_input(tmp_path, keys):
    """Each refusal is a usage error (exit 2) that says why and writes nothing."""
    reg = tmp_path / "headend.json"
    b = "127.0.0.1:1"                            # never reached: refused before
    r = meterctl(b, reg, "release-key", keys / "release.pem")
    assert r.returncode == 2 and "never overwritten" in r.stderr
    r = meterctl(b, reg, "release", "1.x", "--key", keys / "release.pem")
    assert r.returncode == 2 and "VERSION: version must be like 1.2.0" in r.stderr
    (tmp_path / "junk.pem").write_text("not a key")
    r = meterctl(b, reg, "release", "1.2.0", "--key", tmp_path / "junk.pem",
                 "--out", tmp_path / "rel")
    assert r.returncode == 2 and "--key" in r.stderr and not (tmp_path / "rel").exists()
    r = meterctl(b, reg, "provision", "--id", "m9", "--out", tmp_path / "m9.json",
                 "--release-key", tmp_path / "junk.pem")
    assert r.returncode == 2 and "--release-key" in r.stderr
    assert not (tmp_path / "m9.json").exists()
    assert meterctl(b, reg, "provision", "--id", "m9", "--out", tmp_path / "m9.json")\
        .returncode == 0
    r = meterctl(b, reg, "update", "m9", "1.2.0", "--release", tmp_path / "none")
    assert r.returncode == 2 and "no release 1.2.0" in r.stderr
    r = meterctl(b, reg, "update", "1.2.0")
    assert r.returncode == 2 and "a METER or --all" in r.stderr
