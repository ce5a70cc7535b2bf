# The meter's settings, one row each: every fact about a setting lives here,
# and the rest is derived (defaults, what `config` lists and masks, what `set`
# accepts and how it parses it, what a factory reset keeps, what provisioning
# writes from a secrets file). Adding a setting is one row (docs/architecture.md).

from firmware.cmdbase import whole

# flags
SET = 1        # `set KEY VALUE` may change it (technician, head-end)
SECRET = 2     # `config` and `set` show it as ***
KEEP = 4       # a factory reset keeps it: billing and the head-end link, not configuration


# How `set` checks a value, as data (closures would cost RAM for every row):
# ("n", lo, hi) a whole number; ("t", limit) text; ("h", nbytes) a hex key;
# ("c", option, ...) one of the options; ("p", limit) a friendly-night period,
# ("d", limit) a holiday list, both checked by firmware/policy.py.


def check(spec, text, name):
    """The value `text` gives under spec, or ValueError saying why not."""
    kind = spec[0]
    if kind == "n":
        return whole(text, name, spec[1], spec[2])
    if kind == "h":
        try:
            if len(bytes.fromhex(text)) == spec[1]:
                return text.lower()
        except ValueError:
            pass
        raise ValueError("%s must be %d hexadecimal digits" % (name, 2 * spec[1]))
    if kind == "c":
        if text not in spec[1:]:
            raise ValueError("%s must be %s" % (name, " or ".join(spec[1:])))
        return text
    if kind in ("p", "d"):
        from firmware import policy
        (policy.parse_period if kind == "p" else policy.parse_holidays)(text)
    if len(text) > spec[-1]:
        raise ValueError("%s is at most %d characters" % (name, spec[-1]))
    return text


# (key, default (BOARD: the board's, _board()), check spec or None, flags, name
# in the secrets file of `meterctl provision` or None), in the order `config`
# lists them
BOARD = object()
ROWS = (
    ("loss_bound_mwh", BOARD, ("n", 1, 1000000), SET, None),
    ("low_credit", BOARD, ("n", 0, 10 ** 12), SET, None),
    ("low_clear", BOARD, ("n", 0, 10 ** 12), SET, None),
    ("emergency_credit", 0, ("n", 0, 10 ** 7), SET, None),
    ("emergency_threshold", BOARD, ("n", 0, 10 ** 12), SET, None),
    ("debt_share_pct", 0, ("n", 0, 100), SET, None),
    ("debt_cap", 10 ** 9, ("n", 0, 10 ** 12), SET, None),
    ("max_topup", 0, ("n", 0, 0xFFFFFFFF), SET, None),
    ("max_credit", 0, ("n", 0, 10 ** 15), SET, None),
    ("friendly_nights", "", ("p", 11), SET, None),
    ("friendly_weekends", 0, ("n", 0, 1), SET, None),
    ("holidays", "", ("d", 400), SET, None),
    ("reconnect", "button", ("c", "button", "auto"), SET, None),
    ("relay_min_interval_s", 10, ("n", 0, 3600), SET, None),
    ("relay_pulse_ms", 100, ("n", 10, 2000), SET, None),
    ("max_power_w", 0, ("n", 0, 100000), SET, None),
    ("max_power_window_s", 10, ("n", 1, 3600), SET, None),
    ("trip_holdoff_s", 60, ("n", 0, 86400), SET, None),
    ("tz_offset_min", 0, ("n", -720, 840), SET, None),
    ("clock_tolerance_s", 300, ("n", 0, 86400), SET, None),
    ("idle_timeout_s", 300, ("n", 30, 86400), SET, None),
    ("wifi_ssid", "", ("t", 32), SET, None),
    ("wifi_pass", "", ("t", 64), SET | SECRET, None),
    ("mqtt_host", "", ("t", 64), SET | KEEP, "mqtt_host"),
    ("mqtt_port", 1883, ("n", 1, 65535), SET | KEEP, "mqtt_port"),
    ("mqtt_user", "", ("t", 64), SET | KEEP, "mqtt_user"),
    ("mqtt_pass", "", ("t", 64), SET | SECRET | KEEP, "mqtt_pass"),
    # TLS (firmware/tls.py): kept by a factory reset, so that a reset meter
    # never talks plain text to a broker it reached over TLS; mqtt_ca is the
    # SHA-256 of the broker's CA certificate, which provisioning installs
    ("mqtt_tls", 0, ("n", 0, 1), SET | KEEP, "mqtt_tls"),
    ("mqtt_ca", "", ("h", 32), SET | KEEP, None),
    # firmware updates (firmware/ota.py): the release key's SHA-256 (the key
    # itself is a file beside the firmware); how long a new version has to
    # prove itself before the meter goes back to the one before
    ("release_key", "", ("h", 32), SET | KEEP, None),
    ("ota_deadline_s", 900, ("n", 30, 86400), SET | KEEP, None),
    ("telemetry_s", 60, ("n", 10, 86400), SET | KEEP, None),
    # OpenPAYGO Token (docs/tokens.md): start 0 derives the starting code from
    # the key, as the reference implementation does
    ("token_key", "", ("h", 16), SET | SECRET | KEEP, "token_key"),
    ("token_start", 0, ("n", 0, 999999999), SET | KEEP, "token_start"),
    ("token_restricted", 0, ("n", 0, 1), SET | KEEP, "token_restricted"),
    ("token_unit_credit", 100, ("n", 1, 10 ** 9), SET | KEEP, None),
    ("token_divider", 1, ("n", 1, 10 ** 6), SET | KEEP, None),
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


def _board(b):
    low = b.LOW_CREDIT
    return {"loss_bound_mwh": b.LOSS_BOUND_MWH, "low_credit": low,
            "low_clear": low * 3 // 2, "emergency_threshold": low}


def defaults(board):
    out = {}
    for key, d, _, _, _ in ROWS:
        out[key] = list(d) if isinstance(d, list) else d
    out.update(_board(board))
    return out


def kept(settings):
    """The settings a factory reset keeps, with their values now."""
    return {k: settings.get(k) for k in KEEP_ON_RESET}


def parse(key, text):
    """The value of setting `key` given as text, or ValueError."""
    for k, spec, _ in CONFIG:
        if k == key and spec is not None:
            return check(spec, text, key)
    raise ValueError("unknown setting %r (see config)" % key[:24])
