# The meter's settings, one row each: every fact about a setting lives here,
# and the rest is derived (defaults, what `config` lists and masks, what `set`
# accepts and how it parses it, what a factory reset keeps, what provisioning
# writes from a secrets file). Adding a setting is one row (docs/architecture.md).

from firmware import policy

# flags
SET = 1        # `set KEY VALUE` may change it (technician, head-end)
SECRET = 2     # `config` and `set` show it as ***
KEEP = 4       # a factory reset keeps it: billing and the head-end link, not configuration


def whole(text, name, lo, hi):
    """An integer lo..hi from text, or ValueError naming it."""
    try:
        v = int(text)
    except ValueError:
        raise ValueError("%s must be a whole number" % name)
    if not lo <= v <= hi:
        raise ValueError("%s must be %d..%d" % (name, lo, hi))
    return v


def _text(limit):
    def check(v, name):
        if len(v) > limit:
            raise ValueError("%s is at most %d characters" % (name, limit))
        return v
    return check


def _num(lo, hi):
    return lambda v, n: whole(v, n, lo, hi)


def _hex_key(nbytes):
    def check(v, name):
        try:
            if len(bytes.fromhex(v)) == nbytes:
                return v.lower()
        except ValueError:
            pass
        raise ValueError("%s must be %d hexadecimal digits" % (name, 2 * nbytes))
    return check


def _choice(*options):
    def check(v, name):
        if v not in options:
            raise ValueError("%s must be %s" % (name, " or ".join(options)))
        return v
    return check


def _checked(parse_fn, limit):
    def check(v, name):
        parse_fn(v)          # raises ValueError with the reason
        return _text(limit)(v, name)
    return check


# (key, default or board -> default, parse(text, name) or None, flags, name in
# the secrets file of `meterctl provision` or None), in the order `config` lists them
ROWS = (
    ("loss_bound_mwh", lambda b: b.LOSS_BOUND_MWH, _num(1, 1000000), SET, None),
    ("low_credit", lambda b: b.LOW_CREDIT, _num(0, 10 ** 12), SET, None),
    ("low_clear", lambda b: b.LOW_CREDIT * 3 // 2, _num(0, 10 ** 12), SET, None),
    ("emergency_credit", 0, _num(0, 10 ** 7), SET, None),
    ("emergency_threshold", lambda b: b.LOW_CREDIT, _num(0, 10 ** 12), SET, None),
    ("debt_share_pct", 0, _num(0, 100), SET, None),
    ("debt_cap", 10 ** 9, _num(0, 10 ** 12), SET, None),
    ("max_topup", 0, _num(0, 0xFFFFFFFF), SET, None),
    ("max_credit", 0, _num(0, 10 ** 15), SET, None),
    ("friendly_nights", "", _checked(policy.parse_period, 11), SET, None),
    ("friendly_weekends", 0, _num(0, 1), SET, None),
    ("holidays", "", _checked(policy.parse_holidays, 400), SET, None),
    ("reconnect", "button", _choice("button", "auto"), SET, None),
    ("relay_min_interval_s", 10, _num(0, 3600), SET, None),
    ("relay_pulse_ms", 100, _num(10, 2000), SET, None),
    ("max_power_w", 0, _num(0, 100000), SET, None),
    ("max_power_window_s", 10, _num(1, 3600), SET, None),
    ("trip_holdoff_s", 60, _num(0, 86400), SET, None),
    ("tz_offset_min", 0, _num(-720, 840), SET, None),
    ("clock_tolerance_s", 300, _num(0, 86400), SET, None),
    ("idle_timeout_s", 300, _num(30, 86400), SET, None),
    ("wifi_ssid", "", _text(32), SET, None),
    ("wifi_pass", "", _text(64), SET | SECRET, None),
    ("mqtt_host", "", _text(64), SET | KEEP, "mqtt_host"),
    ("mqtt_port", 1883, _num(1, 65535), SET | KEEP, "mqtt_port"),
    ("mqtt_user", "", _text(64), SET | KEEP, "mqtt_user"),
    ("mqtt_pass", "", _text(64), SET | SECRET | KEEP, "mqtt_pass"),
    ("mqtt_tls", 0, _num(0, 1), SET, None),
    ("telemetry_s", 60, _num(10, 86400), SET | KEEP, None),
    # OpenPAYGO Token (docs/tokens.md): start 0 derives the starting code from
    # the key, as the reference implementation does
    ("token_key", "", _hex_key(16), SET | SECRET | KEEP, "token_key"),
    ("token_start", 0, _num(0, 999999999), SET | KEEP, "token_start"),
    ("token_restricted", 0, _num(0, 1), SET | KEEP, "token_restricted"),
    ("token_unit_credit", 100, _num(1, 10 ** 9), SET | KEEP, None),
    ("token_divider", 1, _num(1, 10 ** 6), SET | KEEP, None),
    # kept by the meter itself, never `set`
    ("relay_mode", "auto", None, 0, None),
    ("alarms", [], None, 0, None),
    ("tariffs", [], None, KEEP, None),
    ("relay_state", None, None, KEEP, None),
    ("meter_id", "", None, KEEP, "meter_id"),
    ("hc_key", "", None, KEEP, "key"),
    ("hc_ctr", 0, None, KEEP, None),
)

CONFIG = tuple((r[0], r[2], bool(r[3] & SECRET)) for r in ROWS if r[3] & SET)
CONFIG_KEYS = tuple(c[0] for c in CONFIG)
SECRETS = tuple(r[0] for r in ROWS if r[3] & SECRET)
KEEP_ON_RESET = tuple(r[0] for r in ROWS if r[3] & KEEP)
# secrets-file name -> setting, for provisioning (sim and tools/deploy.py)
PROVISIONED = dict((r[4], r[0]) for r in ROWS if r[4])


def defaults(board):
    out = {}
    for key, d, _, _, _ in ROWS:
        v = d(board) if callable(d) else d
        out[key] = list(v) if isinstance(v, list) else v
    return out


def parse(key, text):
    """The value of setting `key` given as text, or ValueError."""
    for k, parse_fn, _ in CONFIG:
        if k == key and parse_fn is not None:
            return parse_fn(text, key)
    raise ValueError("unknown setting %r (see config)" % key[:24])
