"""What a head-end says to a meter and how it believes what a meter says:
signed commands, sealed messages, a new meter's secrets and OpenPAYGO tokens.
One implementation, used by tools/meterctl.py and the service alike
(docs/mqtt.md has the wire format)."""

import hmac
import json
import os
import re
import time

from firmware.signing import canonical, hmac_sha256, seal_input

COMMAND_TTL_S = 300
METER_ID = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")   # safe in an MQTT topic
SEALED = re.compile(r'^(\{.*), "sig": "([0-9a-f]{64})"\}$', re.S)
TOKEN_TYPES = ("add", "set", "disable", "sync")


class Forged(ValueError):
    """A message on a meter's topic that its key did not sign."""


def next_ctr(last):
    """A command counter above `last` and every earlier one: milliseconds
    since 1970, so that two head-ends sharing a key rarely collide."""
    return max(last or 0, int(time.time() * 1000)) + 1


def command(key_hex, mid, ctr, cmd, args, ttl=COMMAND_TTL_S):
    """A signed command payload (a dict, published as JSON on meters/<id>/cmd)."""
    args = [str(a) for a in args]
    exp = int(time.time()) + ttl
    sig = hmac_sha256(bytes.fromhex(key_hex), canonical(mid, ctr, exp, cmd, args)).hex()
    return {"ctr": ctr, "exp": exp, "cmd": cmd, "args": args, "sig": sig}


def opened(key_hex, mid, topic, payload):
    """A meter's message (events, telemetry, reply) as a dict, once its seal
    checks with that meter's key; Forged says why not."""
    if key_hex is None:
        raise Forged("meter not in the registry: its signature cannot be checked")
    try:
        s = SEALED.match(payload.decode())
    except UnicodeDecodeError:
        s = None
    if s is None:
        raise Forged("unsigned")
    body = s.group(1) + "}"
    want = hmac_sha256(bytes.fromhex(key_hex), seal_input(mid, topic, body)).hex()
    if not hmac.compare_digest(want, s.group(2)):
        raise Forged("bad signature")
    try:
        obj = json.loads(body)
    except ValueError:
        obj = None
    if not isinstance(obj, dict):
        raise Forged("not a JSON object")
    return obj


def check_meter_id(mid):
    if not METER_ID.match(mid or ""):
        raise ValueError("a meter id is 1-32 letters, digits, '.', '_' or '-' (it is part "
                         "of the meter's MQTT topics), got %r" % mid)
    return mid


def new_secrets(mid, pin=None, mqtt_user="", mqtt_pass="", restricted=False):
    """A new meter's secrets file (JSON): its id, HMAC key, broker login and
    OpenPAYGO token key and starting code. The head-end keeps the same key."""
    check_meter_id(mid)
    if pin is not None and not (pin.isdigit() and 4 <= len(pin) <= 12):
        raise ValueError("a PIN is 4 to 12 digits")
    s = {"meter_id": mid, "key": os.urandom(32).hex(),
         "mqtt_user": mqtt_user, "mqtt_pass": mqtt_pass,
         # OpenPAYGO Token: a 16-byte key and a 9-digit starting code
         "token_key": os.urandom(16).hex(),
         "token_start": int.from_bytes(os.urandom(4), "big") % 900000000 + 100000000,
         "token_restricted": 1 if restricted else 0}
    if pin:
        s["pin"] = pin
    return s


def token(token_key, token_start, restricted, count, kind, value, extended=False):
    """An OpenPAYGO token with the reference library: (new count, digits).
    ValueError says what is wrong with the request."""
    from openpaygo.token_encode import OpenPAYGOTokenEncoder
    from openpaygo.token_shared import TokenType
    if kind not in TOKEN_TYPES:
        raise ValueError("token type is one of %s" % ", ".join(TOKEN_TYPES))
    ttype = {"add": TokenType.ADD_TIME, "set": TokenType.SET_TIME,
             "disable": TokenType.DISABLE_PAYG, "sync": TokenType.COUNTER_SYNC}[kind]
    carries = kind in ("add", "set")
    top = 999999 if extended else 995      # what the token type carries
    low = 1 if kind == "add" else 0
    if carries and not low <= value <= top:
        raise ValueError("token value for --type %s must be %d..%d%s (got %d)"
                         % (kind, low, top, "" if extended else
                            " (--extended: up to 999999)", value))
    count, digits = OpenPAYGOTokenEncoder.generate_token(
        token_key, count, value if carries else None, ttype, token_start, 1,
        bool(restricted), extended)
    return count, str(digits)
