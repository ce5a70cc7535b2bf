"""The head-end's vending journal (SQLite): every vend is written, with its
reference, before any command for it is sent, and its fate is learned from
the meter's replies and events whenever they come.

A vend is `pending` until the meter confirms it, then `applied`; `refused`
when the meter refused it for good (a bad amount); `cancelled` when the meter
confirmed a signed `cancel` before it ever applied the vend. A pending vend is
the customer's money in flight: it is never re-vended under a new reference,
only sent again under its own (the meter credits a reference once)."""

import os
import re
import sqlite3
import time

SCHEMA_VERSION = 2
VEND_WINDOW = 32     # the meter remembers this many vend sequence numbers
STATUSES = ("pending", "applied", "refused", "cancelled")
REF_RE = re.compile(r"^[A-Za-z0-9._:-]{1,16}$")   # fits the event log's detail


class JournalError(Exception):
    pass


def new_ref():
    return "V" + os.urandom(6).hex()


def check_ref(ref):
    if not REF_RE.match(ref or ""):
        raise JournalError("a vend reference is 1-16 letters, digits or . _ : - (got %r)"
                           % ref)
    return ref


class Journal:
    def __init__(self, path):
        self.path = str(path)
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self.db.execute("PRAGMA synchronous=FULL")
        ver = self.db.execute("PRAGMA user_version").fetchone()[0]
        if ver > SCHEMA_VERSION:
            raise JournalError("%s: journal schema %d is newer than this tool (%d)"
                               % (self.path, ver, SCHEMA_VERSION))
        if ver < 1:
            with self.db:
                self.db.execute("BEGIN")
                self.db.execute(
                    "CREATE TABLE vends (ref TEXT PRIMARY KEY, meter TEXT NOT NULL, "
                    "amount INTEGER NOT NULL, status TEXT NOT NULL DEFAULT 'pending', "
                    "detail TEXT NOT NULL DEFAULT '', created REAL NOT NULL, "
                    "updated REAL NOT NULL)")
                # every signed command sent for a vend: its reply names its counter
                self.db.execute(
                    "CREATE TABLE sent (meter TEXT NOT NULL, ctr INTEGER NOT NULL, "
                    "ref TEXT NOT NULL, cmd TEXT NOT NULL, at REAL NOT NULL, "
                    "PRIMARY KEY (meter, ctr))")
                self.db.execute("PRAGMA user_version=1")
        if ver < 2:
            with self.db:
                self.db.execute("BEGIN")
                # the meter's vend sequence: issued here, one per vend and meter
                self.db.execute("ALTER TABLE vends ADD COLUMN vseq INTEGER")
                self.db.execute("CREATE UNIQUE INDEX vend_seq ON vends (meter, vseq)")
                self.db.execute("PRAGMA user_version=2")

    def close(self):
        self.db.close()

    # -- vends -------------------------------------------------------------------

    def vend(self, meter, amount, ref=None):
        """The vend `ref` (a new one when ref is None). An existing reference
        must name the same meter and amount: that is a retry, not a new vend.
        A new vend takes the meter's next vend sequence number; it is refused
        while a vend VEND_WINDOW numbers older is still pending, as the meter
        could then no longer tell whether that one landed."""
        ref = check_ref(ref) if ref else new_ref()
        now = time.time()
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            row = self.get(ref)
            if row is None:
                vseq = self.db.execute("SELECT COALESCE(MAX(vseq), 0) + 1 FROM vends "
                                       "WHERE meter = ?", (meter,)).fetchone()[0]
                old = self.db.execute(
                    "SELECT ref FROM vends WHERE meter = ? AND status = 'pending' "
                    "AND vseq <= ? ORDER BY vseq LIMIT 1",
                    (meter, vseq - VEND_WINDOW)).fetchone()
                if old:
                    raise JournalError(
                        "%s has vend %s pending from %d vends ago: the meter keeps the "
                        "last %d; wait for it to land (`meterctl vend %s`) or cancel it "
                        "first" % (meter, old[0], VEND_WINDOW, VEND_WINDOW, old[0]))
                self.db.execute("INSERT INTO vends (ref, meter, amount, created, updated, "
                                "vseq) VALUES (?, ?, ?, ?, ?, ?)",
                                (ref, meter, amount, now, now, vseq))
                return self.get(ref)
        if (row["meter"], row["amount"]) != (meter, amount):
            raise JournalError("vend %s is %d for %s, not %d for %s"
                               % (ref, row["amount"], row["meter"], amount, meter))
        return row

    def get(self, ref):
        r = self.db.execute("SELECT ref, meter, amount, status, detail, created, updated, "
                            "vseq FROM vends WHERE ref = ?", (ref,)).fetchone()
        return None if r is None else dict(zip(
            ("ref", "meter", "amount", "status", "detail", "created", "updated", "vseq"), r))

    def list(self, meter=None, status=None):
        q, args = "SELECT ref FROM vends WHERE 1", []
        if meter:
            q += " AND meter = ?"
            args.append(meter)
        if status:
            q += " AND status = ?"
            args.append(status)
        return [self.get(r[0]) for r in self.db.execute(q + " ORDER BY created", args)]

    def sent(self, meter, ctr, ref, cmd):
        """Before a command for a vend is published (so a reply can always be
        matched, even after a crash right after publishing)."""
        self.db.execute("INSERT OR REPLACE INTO sent (meter, ctr, ref, cmd, at) "
                        "VALUES (?, ?, ?, ?, ?)", (meter, ctr, ref, cmd, time.time()))

    def _set(self, ref, status, detail=""):
        """Record an outcome. An outcome is final: applied and cancelled exclude
        each other, and nothing returns a vend to pending."""
        row = self.get(ref)
        if row is None or row["status"] == status:
            return False
        if row["status"] in ("applied", "cancelled", "refused"):
            return False
        self.db.execute("UPDATE vends SET status = ?, detail = ?, updated = ? WHERE ref = ?",
                        (status, detail, time.time(), ref))
        return True

    # -- what the meter says -------------------------------------------------------

    def reply(self, meter, body):
        """A reply on meters/<id>/reply: the outcome of the command with its ctr."""
        ctr = body.get("ctr")
        r = self.db.execute("SELECT ref, cmd FROM sent WHERE meter = ? AND ctr = ?",
                            (meter, ctr)).fetchone()
        if r is None:
            return None
        ref, cmd = r
        err = body.get("error") or ""
        if body.get("ok"):
            self._set(ref, "cancelled" if cmd == "cancel" else "applied")
        elif "duplicate top-up reference" in err or "used already" in err:
            pass    # used before: an event says whether it was applied or cancelled
        elif cmd == "topup" and err:
            self._set(ref, "refused", err)
        return self.get(ref)

    def event(self, meter, body):
        """An event on meters/<id>/events: a top-up or a cancel, by reference."""
        kind, ref = body.get("event"), body.get("detail") or ""
        row = self.get(ref)
        if row is None or row["meter"] != meter:
            return None
        if kind == "topup":
            self._set(ref, "applied")
        elif kind == "vend_cancelled":
            self._set(ref, "cancelled")
        return self.get(ref)
