# HMAC-SHA256 (RFC 2104) over hashlib.sha256, which every port has; the
# ESP32 port has no hmac module. Head-end commands are signed with it.

from hashlib import sha256

BLOCK = 64


def hmac_sha256(key, msg):
    if len(key) > BLOCK:
        key = sha256(key).digest()
    key = key + b"\x00" * (BLOCK - len(key))
    inner = sha256(bytes(k ^ 0x36 for k in key) + msg).digest()
    return sha256(bytes(k ^ 0x5C for k in key) + inner).digest()


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
