"""The service's record of its meters: keys and counters, the last known
state, and what each meter said (readings, events). Everything stored here
came in a message whose seal checked with the meter's key (headend/ingest.py)."""

import secrets
import time

from headend import protocol

ALARMS = ("lockout", "flash", "ledger", "events_lost")
METER_COLS = ("id", "key", "ctr", "label", "tenant", "token_key", "token_start",
              "token_restricted", "token_count", "created", "online", "last_seen", "credit",
              "energy_mwh", "power_w", "relay", "state", "clock", "tseq", "alarms", "seen")
EVENT_COLS = ("seq", "t", "at", "kind", "value", "detail")


def milli(text):
    """'40.125' (Wh, as the meter sends it) -> 40125 mWh, without floats."""
    text = str(text)
    whole, _, frac = text.partition(".")
    if not whole.isdigit() or (frac and not frac.isdigit()):
        raise ValueError("energy %r" % text)
    return int(whole) * 1000 + int((frac + "000")[:3])


def as_int(v):
    """An integer field of a message (bool is not one)."""
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError("not an integer: %r" % (v,))
    return v


class Store:
    def __init__(self, db):
        self.db = db
        self.keys = {}          # meter id -> key, for checking seals fast

    # -- meters -------------------------------------------------------------------

    def provision(self, mid=None, label="", pin=None):
        """A new meter: its secrets (for the meter, once) and its row here."""
        mid = mid or "m-" + secrets.token_hex(4)
        if self.meter(mid):
            raise ValueError("%s is provisioned already" % mid)
        s = protocol.new_secrets(mid, pin)
        self.add_meter(s, label)
        return s

    def add_meter(self, s, label=""):
        """A meter from its secrets (protocol.new_secrets); a new tenant link."""
        with self.db.tx():
            self.db.q("INSERT INTO meters (id, key, label, tenant, token_key, token_start, "
                      "token_restricted, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                      (s["meter_id"], s["key"], label, secrets.token_urlsafe(24),
                       s["token_key"], s["token_start"], s["token_restricted"], time.time()))
        self.keys[s["meter_id"]] = s["key"]

    def import_registry(self, path):
        """meterctl's registry (JSON): its meters that are not here yet, with
        their keys, counters and token state; the ids added."""
        import json
        added = []
        for mid, m in sorted(json.loads(open(path).read())["meters"].items()):
            if self.meter(mid) is None and "token_key" in m:
                self.add_meter({"meter_id": mid, "key": m["key"], "token_key": m["token_key"],
                                "token_start": m["token_start"],
                                "token_restricted": m.get("token_restricted", 0)})
                self.db.q("UPDATE meters SET ctr = ?, token_count = ? WHERE id = ?",
                          (m.get("ctr", 0), m.get("token_count", 0), mid))
                added.append(mid)
        return added

    def meter(self, mid):
        r = self.db.one("SELECT %s FROM meters WHERE id = ?" % ", ".join(METER_COLS), (mid,))
        return None if r is None else self._row(r)

    def by_tenant(self, token):
        r = self.db.one("SELECT %s FROM meters WHERE tenant = ?" % ", ".join(METER_COLS),
                        (token,))
        return None if r is None else self._row(r)

    def meters(self):
        return [self._row(r) for r in self.db.q(
            "SELECT %s FROM meters ORDER BY id" % ", ".join(METER_COLS))]

    @staticmethod
    def _row(r):
        m = dict(zip(METER_COLS, r))
        m["alarms"] = [a for a in m["alarms"].split(",") if a]
        return m

    def key(self, mid):
        k = self.keys.get(mid)
        if k is None:
            r = self.db.one("SELECT key FROM meters WHERE id = ?", (mid,))
            if r:           # an unknown id is not remembered: it may be added later
                k = self.keys[mid] = r[0]
        return k

    def next_ctr(self, mid):
        """The meter's next command counter, stored before it is used."""
        with self.db.tx(lock_table="meters"):
            last = self.db.one("SELECT ctr FROM meters WHERE id = ?", (mid,))[0]
            ctr = protocol.next_ctr(last)
            self.db.q("UPDATE meters SET ctr = ? WHERE id = ?", (ctr, mid))
        return ctr

    def token_count(self, mid, count):
        self.db.q("UPDATE meters SET token_count = ? WHERE id = ?", (count, mid))

    def add_token(self, mid, digits, kind, value, count, by):
        self.db.q("INSERT INTO tokens (meter, token, kind, value, count, by_user, created) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?)", (mid, digits, kind, value, count, by,
                                                   time.time()))

    def tokens(self, mid, newest=10):
        return [dict(zip(("token", "kind", "value", "by_user", "created"), r)) for r in
                self.db.q("SELECT token, kind, value, by_user, created FROM tokens WHERE "
                          "meter = ? ORDER BY id DESC LIMIT %d" % newest, (mid,))]

    # -- what meters say (called inside the ingest's transaction) -----------------

    def status(self, mid, online, at):
        """Returns True when the meter has just come online."""
        was = self.db.one("SELECT online FROM meters WHERE id = ?", (mid,))
        if was is None:
            return False
        self.db.q("UPDATE meters SET online = ?, last_seen = ? WHERE id = ?",
                  (1 if online else 0, at, mid))
        return bool(online) and not was[0]

    def telemetry(self, mid, body, at):
        """A reading; True when the meter had been taken for offline."""
        credit, energy = as_int(body["credit"]), milli(body["energy_wh"])
        power = as_int(body.get("power_w", 0))
        relay, state = str(body.get("relay", "")), str(body.get("state", ""))
        self.db.q("INSERT INTO readings (meter, at, t, tseq, credit, energy_mwh, power_w, "
                  "relay, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                  (mid, at, body.get("t"), body.get("tseq"), credit, energy, power,
                   relay, state))
        was = self.db.one("SELECT online, tseq FROM meters WHERE id = ?", (mid,))
        newer = was[1] is None or not isinstance(body.get("tseq"), int) or \
            body["tseq"] > was[1]
        if newer:       # a queued reading delivered late does not roll the state back
            self.db.q("UPDATE meters SET credit = ?, energy_mwh = ?, power_w = ?, relay = ?, "
                      "state = ?, clock = ?, tseq = ? WHERE id = ?",
                      (credit, energy, power, relay, state, str(body.get("clock", "")),
                       body.get("tseq"), mid))
        self.db.q("UPDATE meters SET online = 1, last_seen = ? WHERE id = ?", (at, mid))
        return not was[0]

    def event(self, mid, body, at):
        """Store an event once (by seq); returns the first seq still missing
        below it, or None. Alarms follow the events that raise and clear them."""
        seq = as_int(body.get("seq"))
        if seq < 1:
            raise ValueError("event seq %d" % seq)
        if self.db.one("SELECT 1 FROM events WHERE meter = ? AND seq = ?", (mid, seq)):
            return None                     # a redelivery
        kind, detail = str(body.get("event", "")), str(body.get("detail") or "")
        value = body.get("value")
        self.db.q("INSERT INTO events (meter, seq, t, at, kind, value, detail) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?)",
                  (mid, seq, body.get("t"), at, kind, value if isinstance(value, int)
                   and not isinstance(value, bool) else None, detail))
        m = self.meter(mid)
        alarms = list(m["alarms"])
        word = detail.split(" ")[0]
        if kind == "alarms_cleared":
            alarms = []
        elif kind in ("lockout", "events_lost") or (kind == "error" and word in ALARMS):
            name = kind if kind != "error" else word
            alarms += [] if name in alarms else [name]
        seen = m["seen"]
        first, _, last = detail.partition("-")
        if kind == "events_lost" and first.isdigit() and last.isdigit() \
                and seen + 1 >= int(first):
            seen = max(seen, int(last))     # those numbers will never come
        for (s,) in self.db.q("SELECT seq FROM events WHERE meter = ? AND seq > ? "
                              "ORDER BY seq LIMIT 1000", (mid, seen)):
            if s != seen + 1:
                break
            seen = s
        self.db.q("UPDATE meters SET alarms = ?, seen = ? WHERE id = ?",
                  (",".join(alarms), seen, mid))
        return seen + 1 if seq > seen + 1 else None

    # -- what pages show ----------------------------------------------------------

    def events(self, mid, newest=50):
        return [dict(zip(EVENT_COLS, r)) for r in self.db.q(
            "SELECT %s FROM events WHERE meter = ? ORDER BY seq DESC LIMIT %d"
            % (", ".join(EVENT_COLS), newest), (mid,))]

    def readings(self, mid, since):
        """(at, credit, energy_mwh) from `since` on, oldest first, with the
        reading just before it (so that usage across `since` counts)."""
        before = self.db.q("SELECT at, credit, energy_mwh FROM readings WHERE meter = ? AND "
                           "at < ? ORDER BY at DESC LIMIT 1", (mid, since))
        return before + self.db.q("SELECT at, credit, energy_mwh FROM readings WHERE "
                                  "meter = ? AND at >= ? ORDER BY at", (mid, since))
