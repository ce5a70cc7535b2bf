"""The head-end's vending journal: every vend is written, with its reference,
before any command for it is sent, and its fate is learned from the meter's
replies and events whenever they come. meterctl and the service share it
(an SQLite file, or the service's database).

A vend is `pending` until the meter confirms it, then `applied`; `refused`
when the meter refused it for good (a bad amount); `cancelled` when the meter
confirmed a signed `cancel` before it ever applied the vend. A pending vend is
the customer's money in flight: it is never re-vended under a new reference,
only sent again under its own (the meter credits a reference once).

The operator's other commands (tariff, relay, clear) are journalled the same
way as `actions` (pending until the meter answers, sent again when it is back
online); a newer command of the same kind supersedes a pending older one."""

import json
import os
import re
import time

from headend.db import Db, DbError

VEND_WINDOW = 32     # the meter remembers this many vend sequence numbers
STATUSES = ("pending", "applied", "refused", "cancelled")
REF_RE = re.compile(r"^[A-Za-z0-9._:-]{1,16}$")   # fits the event log's detail
VEND_COLS = ("ref", "meter", "amount", "status", "detail", "created", "updated", "vseq",
             "by_user")
ACTION_COLS = ("id", "meter", "cmd", "args", "status", "detail", "by_user", "created",
               "updated")
ACTION = "#"         # sent.ref of an action: '#' and its id (never a vend's reference)
SUPERSEDED = ("relay", "tariff", "clear")      # only the newest pending one counts
# a top-up's errors that hold for good (firmware/ledger.py, registers.py, app.py);
# others (expired, replayed, a signature refused) leave the vend pending
FINAL = ("amount must be", "reference must be", "vend sequence must be", "stale vend",
         "above the maximum")


class JournalError(Exception):
    pass


def new_ref():
    return "V" + os.urandom(6).hex()


def check_ref(ref):
    if not REF_RE.match(ref or ""):
        raise JournalError("a vend reference is 1-16 letters, digits or . _ : - (got %r)"
                           % ref)
    return ref


def vend_command(row, cmd="topup"):
    """The meter command (name, args) that lands a vend, or cancels it."""
    args = [str(row["amount"]), row["ref"]] if cmd == "topup" else [row["ref"]]
    if row["vseq"]:
        args.append(str(row["vseq"]))
    return cmd, args


class Journal:
    def __init__(self, db):
        try:
            self.db = db if isinstance(db, Db) else Db(db)
            self.db.migrate()
        except DbError as e:
            raise JournalError(str(e))
        self.path = self.db.url

    def close(self):
        self.db.close()

    # -- vends -------------------------------------------------------------------

    def vend(self, meter, amount, ref=None, by=""):
        """The vend `ref` (a new one when ref is None). An existing reference
        must name the same meter and amount: that is a retry, not a new vend.
        A new vend takes the meter's next vend sequence number; it is refused
        while a vend VEND_WINDOW numbers older is still pending, as the meter
        could then no longer tell whether that one landed."""
        ref = check_ref(ref) if ref else new_ref()
        now = time.time()
        with self.db.tx(lock_table="vends"):
            row = self.get(ref)
            if row is None:
                vseq = self.db.one("SELECT COALESCE(MAX(vseq), 0) + 1 FROM vends "
                                   "WHERE meter = ?", (meter,))[0]
                old = self.db.one(
                    "SELECT ref FROM vends WHERE meter = ? AND status = 'pending' "
                    "AND vseq <= ? ORDER BY vseq LIMIT 1", (meter, vseq - VEND_WINDOW))
                if old:
                    raise JournalError(
                        "%s has vend %s pending from %d vends ago: the meter keeps the "
                        "last %d; wait for it to land (`meterctl vend %s`) or cancel it "
                        "first" % (meter, old[0], VEND_WINDOW, VEND_WINDOW, old[0]))
                self.db.q("INSERT INTO vends (ref, meter, amount, created, updated, vseq, "
                          "by_user) VALUES (?, ?, ?, ?, ?, ?, ?)",
                          (ref, meter, amount, now, now, vseq, by))
                return self.get(ref)
        if (row["meter"], row["amount"]) != (meter, amount):
            raise JournalError("vend %s is %d for %s, not %d for %s"
                               % (ref, row["amount"], row["meter"], amount, meter))
        return row

    def get(self, ref):
        r = self.db.one("SELECT %s FROM vends WHERE ref = ?" % ", ".join(VEND_COLS), (ref,))
        return None if r is None else dict(zip(VEND_COLS, r))

    def list(self, meter=None, status=None, newest=None):
        q, args = "SELECT %s FROM vends WHERE 1 = 1" % ", ".join(VEND_COLS), []
        if meter:
            q += " AND meter = ?"
            args.append(meter)
        if status:
            q += " AND status = ?"
            args.append(status)
        if newest:
            q += " ORDER BY created DESC LIMIT %d" % newest
        else:
            q += " ORDER BY created, vseq"
        return [dict(zip(VEND_COLS, r)) for r in self.db.q(q, args)]

    def sent(self, meter, ctr, ref, cmd):
        """Before a command for a vend or action is published (so a reply can
        always be matched, even after a crash right after publishing)."""
        with self.db.tx():
            self.db.q("DELETE FROM sent WHERE meter = ? AND ctr = ?", (meter, ctr))
            self.db.q("INSERT INTO sent (meter, ctr, ref, cmd, at) VALUES (?, ?, ?, ?, ?)",
                      (meter, ctr, ref, cmd, time.time()))

    def last_sent(self, ref):
        row = self.db.one("SELECT MAX(at) FROM sent WHERE ref = ?", (ref,))
        return row[0] if row else None

    def _set(self, ref, status, detail="", was=("pending",)):
        """Record an outcome. Applied and cancelled are final and exclude each
        other; nothing returns a vend to pending. Only the meter's own event
        may turn a refused vend applied (a copy the broker still held landed)."""
        row = self.get(ref)
        if row is None or row["status"] not in was or status == "pending":
            return False
        self.db.q("UPDATE vends SET status = ?, detail = ?, updated = ? WHERE ref = ?",
                  (status, detail, time.time(), ref))
        return True

    # -- the operator's other commands --------------------------------------------

    def action(self, meter, cmd, args, by=""):
        """A command for the meter, pending until it answers. A pending relay,
        tariff or clear command is superseded by a newer one of its kind:
        only the newest is sent."""
        now = time.time()
        with self.db.tx():
            if cmd in SUPERSEDED:
                self.db.q("UPDATE actions SET status = 'superseded', updated = ? WHERE "
                          "meter = ? AND cmd = ? AND status = 'pending'", (now, meter, cmd))
            rid = self.db.one("INSERT INTO actions (meter, cmd, args, by_user, created, "
                              "updated) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                              (meter, cmd, json.dumps(args), by, now, now))[0]
        return self.get_action(rid)

    def get_action(self, rid):
        r = self.db.one("SELECT %s FROM actions WHERE id = ?" % ", ".join(ACTION_COLS), (rid,))
        if r is None:
            return None
        row = dict(zip(ACTION_COLS, r))
        row["args"] = json.loads(row["args"])
        return row

    def actions(self, meter, status=None, newest=None):
        q = "SELECT id FROM actions WHERE meter = ?"
        args = [meter]
        if status:
            q += " AND status = ?"
            args.append(status)
        q += " ORDER BY id DESC LIMIT %d" % newest if newest else " ORDER BY id"
        return [self.get_action(r[0]) for r in self.db.q(q, args)]

    def _set_action(self, rid, ok, detail):
        self.db.q("UPDATE actions SET status = ?, detail = ?, updated = ? WHERE id = ? "
                  "AND status = 'pending'",
                  ("applied" if ok else "refused", detail, time.time(), rid))

    # -- what the meter says -------------------------------------------------------

    def reply(self, meter, body):
        """A reply on meters/<id>/reply, matched to the command by its ctr.
        A vend is applied or cancelled only by the meter's event (below): the
        meter echoes the ctr of any command, so a reply carrying ours may
        answer someone else's unsigned read. It is refused only for a reason
        that only a verified top-up can give and that holds for good."""
        r = self.db.one("SELECT ref, cmd FROM sent WHERE meter = ? AND ctr = ?",
                        (meter, body.get("ctr")))
        if r is None:
            return None
        ref, cmd = r
        err = str(body.get("error") or "")
        if ref.startswith(ACTION):
            self._set_action(int(ref[1:]), bool(body.get("ok")),
                             err or " ".join(map(str, body.get("lines") or [])))
            return self.get_action(int(ref[1:]))
        if cmd == "topup" and any(why in err for why in FINAL):
            self._set(ref, "refused", err)
        return self.get(ref)

    def event(self, meter, body):
        """An event on meters/<id>/events: a top-up or a cancel, by reference."""
        kind, ref = body.get("event"), body.get("detail") or ""
        row = self.get(ref)
        if row is None or row["meter"] != meter:
            return None
        if kind == "topup" and body.get("value") != row["amount"]:
            # someone (a technician's console) used our reference for another amount
            self._set(ref, "refused", "reference used by a top-up of %s"
                      % body.get("value"))
        elif kind == "topup":
            self._set(ref, "applied", "", ("pending", "refused"))
        elif kind == "vend_cancelled":
            self._set(ref, "cancelled")
        return self.get(ref)
