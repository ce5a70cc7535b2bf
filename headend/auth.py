"""Operator logins: scrypt password hashes, server-side sessions (the cookie
holds a random id, the database only its SHA-256) with a CSRF token each,
roles, and a pause after repeated wrong passwords."""

import hashlib
import hmac
import secrets
import threading
import time

ROLES = ("operator", "viewer")        # a viewer sees everything and changes nothing
SESSION_S = 12 * 3600
FAILS, PAUSE_S = 5, 60                # wrong passwords in a row, then a pause
SCRYPT = {"n": 2 ** 14, "r": 8, "p": 1}


class AuthError(Exception):
    pass


def hash_password(password, salt=None):
    salt = salt or secrets.token_bytes(16)
    h = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **SCRYPT)
    return "scrypt$%s$%s" % (salt.hex(), h.hex())


def password_ok(password, stored):
    try:
        _, salt, _ = stored.split("$")
        return hmac.compare_digest(hash_password(password, bytes.fromhex(salt)), stored)
    except ValueError:
        return False


def _sid_hash(sid):
    return hashlib.sha256(sid.encode()).hexdigest()


class Users:
    def __init__(self, db):
        self.db = db
        self.fails = {}           # name -> (wrong passwords in a row, last time)
        self.lock = threading.Lock()
        self.nobody = hash_password(secrets.token_urlsafe(16))   # checked for unknown names

    def add(self, name, password, role):
        if role not in ROLES:
            raise AuthError("role is one of %s" % ", ".join(ROLES))
        if not name or not name.isprintable() or len(name) > 64:
            raise AuthError("a user name is 1-64 printable characters")
        if len(password) < 8:
            raise AuthError("a password has at least 8 characters")
        with self.db.tx():
            self.db.q("DELETE FROM users WHERE name = ?", (name,))
            self.db.q("DELETE FROM sessions WHERE name = ?", (name,))   # a reset logs out
            self.db.q("INSERT INTO users (name, hash, role, created) VALUES (?, ?, ?, ?)",
                      (name, hash_password(password), role, time.time()))

    def count(self):
        return self.db.one("SELECT COUNT(*) FROM users")[0]

    def login(self, name, password):
        """A new session (id, csrf) for the right password; AuthError else."""
        with self.lock:     # a try counts before it is checked: parallel guesses too
            n, last = self.fails.get(name, (0, 0))
            if n >= FAILS and time.time() - last < PAUSE_S:
                raise AuthError("too many wrong passwords: try again in a minute")
            if len(self.fails) > 10000:
                self.fails.clear()
            self.fails[name] = (n + 1, time.time())
        row = self.db.one("SELECT hash FROM users WHERE name = ?", (name,))
        # one hash either way: an unknown name answers as slowly as a known one
        if not password_ok(password, row[0] if row else self.nobody) or row is None:
            raise AuthError("wrong user name or password")
        with self.lock:
            self.fails.pop(name, None)
        sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        self.db.q("INSERT INTO sessions (id, name, csrf, expires) VALUES (?, ?, ?, ?)",
                  (_sid_hash(sid), name, csrf, time.time() + SESSION_S))
        return sid, csrf

    def session(self, sid):
        """{name, role, csrf} of a live session, or None."""
        if not sid:
            return None
        r = self.db.one("SELECT s.name, u.role, s.csrf, s.expires FROM sessions s JOIN users u "
                        "ON u.name = s.name WHERE s.id = ?", (_sid_hash(sid),))
        if r is None or r[3] < time.time():
            return None
        return {"name": r[0], "role": r[1], "csrf": r[2]}

    def logout(self, sid):
        self.db.q("DELETE FROM sessions WHERE id = ? OR expires < ?",
                  (_sid_hash(sid or ""), time.time()))
