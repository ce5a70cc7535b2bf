# HMAC-SHA256 (RFC 2104) over hashlib.sha256, which every port has; the
# ESP32 port has no hmac module. Head-end commands are signed with it, and
# so is everything the meter publishes (seal).

from binascii import hexlify
from hashlib import sha256

BLOCK = 64


class Hmac:
    """HMAC-SHA256 under one key; the padded keys are made once."""

    def __init__(self, key):
        if len(key) > BLOCK:
            key = sha256(key).digest()
        key = key + b"\x00" * (BLOCK - len(key))
        self.inner = bytes(k ^ 0x36 for k in key)
        self.outer = bytes(k ^ 0x5C for k in key)

    def digest(self, msg):
        return sha256(self.outer + sha256(self.inner + msg).digest()).digest()


def hmac_sha256(key, msg):
    return Hmac(key).digest(msg)


def seal_input(meter_id, topic, body):
    """The bytes a meter message's signature covers: its meter, its topic
    (events, telemetry, reply: one cannot stand in for another) and the JSON
    text without the signature, joined by the ASCII unit separator."""
    return ("%s\x1f%s\x1f%s" % (meter_id, topic, body)).encode()


def seal(mac, meter_id, topic, body):
    """body (a JSON object's text) with "sig" added as its last member. The
    head-end takes the signature off and checks the rest byte for byte, so
    neither side needs a canonical JSON."""
    sig = hexlify(mac.digest(seal_input(meter_id, topic, body))).decode()
    return body[:-1] + ', "sig": "' + sig + '"}'


def canonical(meter_id, ctr, exp, cmd, args):
    """The bytes a command's signature covers. Fields are joined by the ASCII
    unit separator, which may not appear in any of them."""
    parts = [meter_id, str(ctr), str(exp), cmd] + list(args)
    for p in parts:
        if "\x1f" in p:
            raise ValueError("field contains a separator")
    return "\x1f".join(parts).encode()


def same(a, b):
    """Compare two digests in time that does not depend on where they differ."""
    if len(a) != len(b):
        return False
    d = 0
    for x, y in zip(a, b):
        d |= x ^ y
    return d == 0
