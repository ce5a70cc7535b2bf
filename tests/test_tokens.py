"""OpenPAYGO Token: the firmware's decoder (on the unix port) against the
reference library `openpaygo` (CPython) that we did not write."""

import json
import random
import subprocess
import time
import sys

from openpaygo.token_decode import OpenPAYGOTokenDecoder as RefDecoder
from openpaygo.token_encode import OpenPAYGOTokenEncoder as RefEncoder
from openpaygo.token_shared import OpenPAYGOTokenShared, TokenType

from conftest import ROOT, mp_json

KINDS = [TokenType.ADD_TIME, TokenType.SET_TIME, TokenType.DISABLE_PAYG, TokenType.COUNTER_SYNC]


def ref_decode(token, key_hex, count, used, start, restricted):
    """The reference's outcome; its extended decoder raises on some invalid
    tokens (an unset local variable), which is an INVALID token."""
    try:
        value, kind, n, new_used = RefDecoder.decode_token(
            token, key_hex, count, list(used), start, 1, restricted)
    except (NameError, UnboundLocalError):
        return [TokenType.INVALID, None, None, sorted(used)]
    if new_used is None:
        new_used = used
    return [kind, None if value is None else int(value), n, sorted(new_used)]


def gen(key_hex, start, target, kind, value, restricted, extended):
    """A token that lands on count `target` (even for ADD, odd otherwise)."""
    n, tok = RefEncoder.generate_token(key_hex, target - 1, value, kind, start, 1,
                                       restricted, extended)
    assert n == target
    return tok


def random_case(rng):
    key_hex = "%032x" % rng.getrandbits(128)
    derived = rng.random() < 0.3
    start = (OpenPAYGOTokenShared.generate_starting_code(bytes.fromhex(key_hex)) if derived
             else rng.randrange(100000000, 999999999))
    restricted = rng.random() < 0.3
    extended = rng.random() < 0.3
    last = rng.randrange(0, 200)
    used = sorted({last} | {c for c in range(max(0, last - 16), last) if rng.random() < 0.4})
    kind = rng.choice(KINDS if not extended else KINDS[:2])
    # where the token lands relative to the meter's count: ahead, behind, far
    where = rng.random()
    if where < 0.55:
        target = last + rng.randrange(1, 60)
    elif where < 0.8:
        target = max(1, last - rng.randrange(0, 20))
    elif where < 0.9:
        target = last + rng.randrange(64, 110)
    else:
        target = last + rng.randrange(1, 30)
    want_odd = kind != TokenType.ADD_TIME
    if target % 2 != want_odd:
        target += 1
    value = None
    if kind in (TokenType.ADD_TIME, TokenType.SET_TIME):
        value = rng.randrange(0, 999999 if extended else 996)
    tok = gen(key_hex, start, target, kind, value, restricted, extended)
    if where >= 0.9:                       # a typo: one digit changed
        digits = "1234" if restricted else "0123456789"
        i = rng.randrange(len(tok))
        tok = tok[:i] + rng.choice([d for d in digits if d != tok[i]]) + tok[i + 1:]
    return {"token": tok, "key": key_hex, "count": last, "used": used, "start": start,
            "restricted": restricted}


def run_batch(tmp_path, cases, name):
    path = tmp_path / (name + ".json")
    path.write_text(json.dumps(cases))
    return mp_json("tests/mp/token_batch.py", path, timeout=900, heap="32m")


def test_thousands_of_reference_tokens_decode_identically(tmp_path):
    rng = random.Random(20261127)
    cases = [random_case(rng) for _ in range(2500)]
    got = run_batch(tmp_path, cases, "random")
    kinds = {}
    for c, mine in zip(cases, got):
        want = ref_decode(c["token"], c["key"], c["count"], c["used"], c["start"],
                          c["restricted"])
        assert mine == want, (c, mine, want)
        kinds[want[0]] = kinds.get(want[0], 0) + 1
    # every outcome was exercised
    for k in (TokenType.ADD_TIME, TokenType.SET_TIME, TokenType.DISABLE_PAYG,
              TokenType.COUNTER_SYNC, TokenType.INVALID, TokenType.ALREADY_USED):
        assert kinds.get(k, 0) >= 20, kinds


def sequence(key_hex, start, restricted, steps):
    """Tokens for a scripted history; steps are (target_count, kind, value)."""
    return [gen(key_hex, start, t, k, v, restricted, ext) for t, k, v, ext in steps]


def ref_sequence(key_hex, start, restricted, tokens):
    count, used, out = 0, [0], []
    for tok in tokens:
        r = ref_decode(tok, key_hex, count, used, start, restricted)
        if r[2] is not None and r[2] > count:
            count = r[2]
        used = r[3]
        out.append(r)
    return out


def test_replay_out_of_order_set_blocks_older_window_and_counter_sync(tmp_path):
    A, S, D, C = KINDS
    script = [
        (2, A, 10, False), (4, A, 20, False), (4, A, 20, False),   # replay
        (8, A, 5, False), (6, A, 7, False),                        # out of order, accepted
        (6, A, 7, False),                                          # ...but only once
        (9, S, 100, False), (10, A, 30, False), (12, A, 1, False),
        (11, S, 50, False),                                        # older than the SET
        (80, A, 3, False),                                         # beyond the window
        (79, C, None, False),                                      # counter sync jumps
        (80, A, 3, False),                                         # now inside
        (81, D, None, False), (82, A, 9, False),
        (84, A, 123456, True), (85, S, 999000, True), (84, A, 123456, True),
        (160, A, 4, False), (251, C, None, False),                 # too far even to sync
    ]
    rng = random.Random(7)
    cases = []
    for i in range(12):
        key_hex = "%032x" % rng.getrandbits(128)
        start = rng.randrange(100000000, 999999999)
        restricted = i % 3 == 0
        cases.append({"seq": sequence(key_hex, start, restricted, script), "key": key_hex,
                      "start": start, "restricted": restricted})
    got = run_batch(tmp_path, cases, "seq")
    for c, mine in zip(cases, got):
        want = ref_sequence(c["key"], c["start"], c["restricted"], c["seq"])
        assert mine == want
    kinds = [s[0] for s in got[0]]
    assert kinds[:3] == [TokenType.ADD_TIME, TokenType.ADD_TIME, TokenType.ALREADY_USED]
    assert kinds[4] == TokenType.ADD_TIME and kinds[5] == TokenType.ALREADY_USED
    assert kinds[9] == TokenType.ALREADY_USED and kinds[10] == TokenType.INVALID
    assert kinds[11] == TokenType.COUNTER_SYNC and kinds[12] == TokenType.ADD_TIME
    assert kinds[13] == TokenType.DISABLE_PAYG and kinds[-1] == TokenType.INVALID


def test_malformed_token_text_is_refused(tmp_path):
    cases = [{"token": t, "key": "00" * 16, "count": 0, "used": [0], "start": 123456789,
              "restricted": r}
             for t, r in (("12a456789", False), ("", False), ("1234567890123", False),
                          ("1234512345123455", True), ("125123451234512", True))]
    got = run_batch(tmp_path, cases, "bad")
    assert [g[0] for g in got] == ["error"] * 5


def _meterctl(reg, *args):
    import subprocess
    import sys
    from conftest import ROOT
    return subprocess.run([sys.executable, str(ROOT / "tools" / "meterctl.py"), "--registry",
                           str(reg)] + [str(a) for a in args], capture_output=True, text=True,
                          timeout=60)


def test_tokens_on_the_console_keypad_lockout_and_power_cut(tmp_path):
    import signal
    import time
    from consolepty import PtyConsole
    reg = tmp_path / "headend.json"
    sec = tmp_path / "t.json"
    assert _meterctl(reg, "provision", "--id", "t1", "--out", sec).returncode == 0
    tok = lambda *a: _meterctl(reg, "token", "t1", *a).stdout.strip()   # noqa: E731
    img = tmp_path / "t.img"
    t1, t2 = tok(10), tok(5)
    c = PtyConsole("--flash", img, "--secrets", sec, "--credit", 0, "--speed", 50)
    assert c.kv("token " + t1) == {"token": "add", "value": "1000", "credit": "1000",
                                   "payg": "on"}
    assert c.error("token " + t1) == "token already used"
    assert c.error("token 123456789").startswith("invalid token; wait 5 s")
    assert "a wrong token was entered; try again in" in c.error("token " + t2)  # t2 kept
    time.sleep(0.2)                                                  # 10 virtual seconds
    assert c.error("token 987654321").startswith("invalid token; wait 10 s")
    c.close()
    c = PtyConsole("--flash", img, "--speed", 50)                   # reboot: still locked
    assert "2 wrong tokens in a row; try again in" in c.error("token " + t2)
    time.sleep(0.3)
    assert c.kv("token " + t2)["credit"] == "1500"                  # and t2 still works
    assert c.close(signal.SIGKILL) == -signal.SIGKILL               # power cut after ok
    c = PtyConsole("--flash", img)
    assert c.kv("credit") == {"credit": "1500"}                     # once, not lost
    assert c.error("token " + t2) == "token already used"
    set_tok = _meterctl(reg, "token", "t1", "42", "--type", "set").stdout.strip()
    assert c.kv("token " + set_tok)["credit"] == "4200"
    off = _meterctl(reg, "token", "t1", "--type", "disable").stdout.strip()
    assert c.kv("token " + off)["payg"] == "off"
    big = _meterctl(reg, "token", "t1", "123456", "--extended").stdout.strip()
    assert len(big) == 12 and c.kv("token " + big)["value"] == "12345600"
    c.close()


def test_keypad_entry_in_the_simulator(tmp_path):
    from conftest import run_sim
    reg = tmp_path / "headend.json"
    sec = tmp_path / "k.json"
    assert _meterctl(reg, "provision", "--id", "k1", "--out", sec, "--restricted").returncode == 0
    t = _meterctl(reg, "token", "k1", "20").stdout.strip()
    assert len(t) == 15 and set(t) <= set("1234")
    r = run_sim("--secrets", sec, "--credit", 0, "--hours", 1, "--json", "--load", 100,
                "--keys", "600:" + t, "--keys", "700:" + t, "--set", "reconnect=auto")
    assert r.rc == 0, r.stderr
    toks = [e for e in r.events if e["event"] in ("token", "token_rejected")]
    assert [e["event"] for e in toks] == ["token", "token_rejected"]
    assert toks[0]["value"] == 2000 and toks[1]["detail"] == "already used"


def test_meterctl_refuses_token_values_the_type_cannot_carry(tmp_path):
    """`token m1 -1` once printed a token the meter applied as 99900 credit."""
    reg = tmp_path / "h.json"
    mc = [sys.executable, str(ROOT / "tools" / "meterctl.py"), "--registry", str(reg)]
    assert subprocess.run(mc + ["provision", "--id", "m1", "--out", str(tmp_path / "s.json")],
                          capture_output=True).returncode == 0
    for args in (["-1"], ["996"], ["0"], ["1000000", "--extended"], ["-5", "--type", "set"]):
        r = subprocess.run(mc + ["token", "m1"] + args, capture_output=True, text=True)
        assert r.returncode == 2 and "token value" in r.stderr and not r.stdout, (args, r)
    before = json.loads(reg.read_text())["meters"]["m1"]["token_count"]
    ok = subprocess.run(mc + ["token", "m1", "995"], capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.strip().isdigit()
    ok = subprocess.run(mc + ["token", "m1", "0", "--type", "set"], capture_output=True, text=True)
    assert ok.returncode == 0
    assert json.loads(reg.read_text())["meters"]["m1"]["token_count"] > before
    r = subprocess.run(mc + ["resend", "m1", "0"], capture_output=True, text=True)
    assert r.returncode == 2 and "SEQ" in r.stderr


def test_token_settings_derived_start_grouped_digits_and_lockout_events(tmp_path):
    """A meter given only a key (no starting code) takes the reference's
    tokens, as the reference derives the starting code from the key; token
    settings are set and shown like any other (the key masked); tokens may be
    typed in groups; every refusal leaves an event."""
    key = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
    _, t1 = RefEncoder.generate_token(key, 0, 7, TokenType.ADD_TIME)     # no starting code
    _, t2 = RefEncoder.generate_token(key, 2, 3, TokenType.ADD_TIME)
    grouped = " ".join([t2[:3], t2[3:6], t2[6:]])
    from consolepty import PtyConsole
    c = PtyConsole("--flash", tmp_path / "m.img", "--pin", "2468", "--credit", 0,
                   "--set", "token_key=" + key.upper())
    c.ok("login 2468")
    c.ok("set token_unit_credit 50")
    cfg = c.kv("config")
    assert cfg["token_key"] == "***" and cfg["token_start"] == "0"
    assert cfg["token_unit_credit"] == "50" and cfg["token_divider"] == "1"
    assert c.kv("token " + t1)["credit"] == "350"
    assert c.error("token 12x45") == "a token is digits only"
    assert c.error("token 123456789").startswith("invalid token")
    msg = c.error("token " + grouped)           # during the wait after a wrong token
    assert msg.startswith("a wrong token was entered; try again in"), msg
    log = c.ok("log 4")
    kinds = [x.split(" detail=")[1] for x in log if "kind=token_rejected" in x]
    assert kinds == ["not a token", "invalid", "locked"], log
    assert "usage" in c.error("token")
    assert c.error("set token_key 12") == "token_key must be 32 hexadecimal digits"
    c.close()
    c = PtyConsole("--flash", tmp_path / "m.img", "--speed", 50)   # the wait starts over
    time.sleep(0.3)
    assert c.kv("token " + grouped)["credit"] == "500"     # 350 + 3 x 50
    c.close()


def test_secrets_with_zero_values_take_effect(tmp_path):
    """token_restricted 0 (or token_start 0) in a secrets file is a value,
    not an absence: restricted mode can be turned off again."""
    img = tmp_path / "m.img"
    base = {"meter_id": "m1", "key": "00" * 32, "token_key": "11" * 16,
            "token_start": 123456789}
    on = tmp_path / "on.json"
    on.write_text(json.dumps(dict(base, token_restricted=1)))
    off = tmp_path / "off.json"
    off.write_text(json.dumps(dict(base, token_restricted=0, token_start=0)))
    for sec, want in ((on, ("1", "123456789")), (off, ("0", "0"))):
        p = subprocess.run([sys.executable, str(ROOT / "tools" / "sim.py"), "--console",
                            "--flash", str(img), "--secrets", str(sec)], input="config\n",
                           capture_output=True, text=True, timeout=60)
        cfg = dict(x.split("=", 1) for x in p.stdout.splitlines() if "=" in x)
        assert (cfg["token_restricted"], cfg["token_start"]) == want, p.stdout


def test_a_wrong_token_cut_by_a_power_cut_is_counted_or_never_looked_at(tmp_path):
    """A token attempt is counted as wrong on flash before it is decoded, so
    cutting the power at any write of an attempt cannot make a guess free:
    after the reboot, a token that was decoded is on the wrong-token count."""
    key = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
    r = mp_json("tests/mp/tokens/wrong_token_power_cut.py", key)
    assert any(cut for _, cut, _, _ in r), r
    for k, cut, decoded, fails in r:
        assert not decoded or fails >= 1, r       # looked at => counted


def test_native_siphash_matches_the_plain_one():
    """The token chain's SipHash runs as viper machine code on 32-bit halves
    where the port compiles viper (firmware/siphash_native.py); it must hash
    exactly as the plain big-integer version, on a 64-bit host and on a
    board's 32-bit words."""
    from device import MP32
    runs = [mp_json("tests/mp/tokens/siphash_both.py")]
    if MP32.exists():        # ../shared's 32-bit interpreter (CI has it)
        r = subprocess.run([str(MP32), str(ROOT / "tests/mp/tokens/siphash_both.py")],
                           env={"MICROPYPATH": str(ROOT)}, capture_output=True,
                           text=True, timeout=120)
        runs.append(json.loads(r.stdout.strip().splitlines()[-1]))
    for r in runs:
        assert r == {"vector": "a129ca6149be45e5", "bad": [], "used": True}, r
