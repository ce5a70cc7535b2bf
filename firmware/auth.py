# Technician PIN: stored only as a salted, iterated SHA-256 hash in the
# settings. Wrong PINs lock logins out with growing delays; the failure count
# is persisted, so pulling the power does not reset it.

import os
from binascii import hexlify, unhexlify
from hashlib import sha256

ROUNDS = 1000          # ~30 ms on an ESP32: slows offline guessing of a short PIN
FREE_TRIES = 3
FIRST_LOCK_S = 30
MAX_LOCK_S = 3600


def pin_hash(pin, salt):
    h = salt + pin.encode()
    for _ in range(ROUNDS):
        h = sha256(h).digest()
    return h


def valid_pin(pin):
    return 4 <= len(pin) <= 12 and all("0" <= c <= "9" for c in pin)


def lock_seconds(failures):
    """Lockout after `failures` consecutive wrong PINs: 30 s after the third,
    doubling with each further one, at most an hour."""
    if failures < FREE_TRIES:
        return 0
    s = FIRST_LOCK_S << (failures - FREE_TRIES) if failures - FREE_TRIES < 12 else MAX_LOCK_S
    return s if s < MAX_LOCK_S else MAX_LOCK_S


class Auth:
    def __init__(self, settings, now_ms):
        self.settings = settings
        failures = settings.get("pin_failures") or 0
        # After a reboot a pending lockout starts over: the wait is never shorter.
        self.locked_until = now_ms + 1000 * lock_seconds(failures)

    def has_pin(self):
        return bool(self.settings.get("pin_hash"))

    def set_pin(self, pin):
        if not valid_pin(pin):
            raise ValueError("PIN must be 4 to 12 digits")
        salt = os.urandom(16)
        self.settings.save({"pin_salt": hexlify(salt).decode(),
                            "pin_hash": hexlify(pin_hash(pin, salt)).decode(),
                            "pin_failures": 0})
        self.locked_until = 0

    def lock_left_s(self, now_ms):
        left = self.locked_until - now_ms
        return (left + 999) // 1000 if left > 0 else 0

    def check(self, pin, now_ms):
        """None if the PIN is right, else the reason it was refused. A refusal
        during a lockout does not look at the PIN at all."""
        if not self.has_pin():
            return "no technician PIN set on this meter (provision one)"
        left = self.lock_left_s(now_ms)
        if left:
            return "locked out after wrong PINs, try again in %d s" % left
        s = self.settings
        # The attempt is counted on flash before the PIN is looked at: a power
        # cut during that write leaves it counted or not tried at all, never
        # tried and not counted (which would make guessing free).
        failures = (s.get("pin_failures") or 0) + 1
        s.save({"pin_failures": failures})
        want = unhexlify(s.get("pin_hash"))
        got = pin_hash(pin, unhexlify(s.get("pin_salt"))) if valid_pin(pin) else b""
        diff = len(want) ^ len(got)
        for a, b in zip(want, got):
            diff |= a ^ b
        if diff == 0:
            s.save({"pin_failures": 0})
            return None
        lock = lock_seconds(failures)
        if lock:
            self.locked_until = now_ms + 1000 * lock
            return "wrong PIN; locked out for %d s" % lock
        return "wrong PIN"

    def failures(self):
        return self.settings.get("pin_failures") or 0
