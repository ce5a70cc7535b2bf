"""The head-end's database: an SQLite file (the default) or PostgreSQL (a
postgresql:// URL), behind one small interface, with versioned migrations.

SQL is written once with `?` placeholders and portable types; the few spots
where the two differ (auto ids, 64-bit ints, doubles, write locks) are named
here. One connection per Db, shared by the service's threads under a lock: the
writes come in batches from one ingest thread, and SQLite serialises writers
anyway."""

import os
import threading
from contextlib import contextmanager


class DbError(Exception):
    pass


TYPES = {
    "sqlite": {"id": "INTEGER PRIMARY KEY AUTOINCREMENT", "int": "INTEGER",
               "real": "REAL"},
    "postgresql": {"id": "BIGSERIAL PRIMARY KEY", "int": "BIGINT",
                   "real": "DOUBLE PRECISION"},
}

# Each step is applied once, in order, in one transaction, and leaves the
# schema version at its number. 1 and 2 are the vending journal as meterctl
# wrote it before the service existed (their files open unchanged).
MIGRATIONS = [
    (1, ["CREATE TABLE vends (ref TEXT PRIMARY KEY, meter TEXT NOT NULL, "
         "amount {int} NOT NULL, status TEXT NOT NULL DEFAULT 'pending', "
         "detail TEXT NOT NULL DEFAULT '', created {real} NOT NULL, updated {real} NOT NULL)",
         # every signed command sent for a vend: its reply names its counter
         "CREATE TABLE sent (meter TEXT NOT NULL, ctr {int} NOT NULL, ref TEXT NOT NULL, "
         "cmd TEXT NOT NULL, at {real} NOT NULL, PRIMARY KEY (meter, ctr))"]),
    (2, ["ALTER TABLE vends ADD COLUMN vseq {int}",
         "CREATE UNIQUE INDEX vend_seq ON vends (meter, vseq)"]),
    # the service: its meters (keys, counters, last known state), what they
    # said, the operator's other commands, tokens, users and their sessions
    (3, ["CREATE TABLE meters (id TEXT PRIMARY KEY, key TEXT NOT NULL, ctr {int} NOT NULL "
         "DEFAULT 0, label TEXT NOT NULL DEFAULT '', tenant TEXT NOT NULL UNIQUE, "
         "token_key TEXT NOT NULL, token_start {int} NOT NULL, token_restricted {int} NOT "
         "NULL DEFAULT 0, token_count {int} NOT NULL DEFAULT 0, created {real} NOT NULL, "
         "online {int} NOT NULL DEFAULT 0, last_seen {real}, credit {int}, energy_mwh {int}, "
         "power_w {int}, relay TEXT, state TEXT, clock TEXT, tseq {int}, "
         "alarms TEXT NOT NULL DEFAULT '', seen {int} NOT NULL DEFAULT 0)",
         "CREATE TABLE readings (meter TEXT NOT NULL, at {real} NOT NULL, t {int}, "
         "tseq {int}, credit {int} NOT NULL, energy_mwh {int} NOT NULL, power_w {int}, "
         "relay TEXT, state TEXT)",
         "CREATE INDEX readings_meter_at ON readings (meter, at)",
         "CREATE TABLE events (meter TEXT NOT NULL, seq {int} NOT NULL, t {int}, "
         "at {real} NOT NULL, kind TEXT NOT NULL, value {int}, detail TEXT NOT NULL "
         "DEFAULT '', PRIMARY KEY (meter, seq))",
         "CREATE TABLE actions (id {id}, meter TEXT NOT NULL, cmd TEXT NOT NULL, "
         "args TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'pending', detail TEXT NOT NULL "
         "DEFAULT '', by_user TEXT NOT NULL DEFAULT '', created {real} NOT NULL, "
         "updated {real} NOT NULL)",
         "CREATE INDEX actions_meter ON actions (meter, status)",
         "CREATE TABLE tokens (id {id}, meter TEXT NOT NULL, token TEXT NOT NULL, "
         "kind TEXT NOT NULL, value {int}, count {int} NOT NULL, by_user TEXT NOT NULL "
         "DEFAULT '', created {real} NOT NULL)",
         "CREATE TABLE users (name TEXT PRIMARY KEY, hash TEXT NOT NULL, role TEXT NOT NULL, "
         "created {real} NOT NULL)",
         "CREATE TABLE sessions (id TEXT PRIMARY KEY, name TEXT NOT NULL, csrf TEXT NOT NULL, "
         "expires {real} NOT NULL)",
         "ALTER TABLE vends ADD COLUMN by_user TEXT NOT NULL DEFAULT ''"]),
]
VERSION = MIGRATIONS[-1][0]


class Db:
    def __init__(self, url):
        self.url = str(url)
        self.lock = threading.RLock()
        self.depth = 0
        if self.url.startswith(("postgresql://", "postgres://")):
            self.kind = "postgresql"
            import psycopg
            try:
                self.conn = psycopg.connect(self.url, autocommit=True)
            except psycopg.Error as e:
                raise DbError("cannot open %s: %s" % (self.url, e))
        else:
            self.kind = "sqlite"
            import sqlite3
            path = self.url[len("sqlite:///"):] if self.url.startswith("sqlite:///") \
                else self.url
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            # autocommit; transactions are explicit (tx)
            self.conn = sqlite3.connect(path, timeout=30, isolation_level=None,
                                        check_same_thread=False)
            self.conn.execute("PRAGMA synchronous=FULL")

    def close(self):
        self.conn.close()

    def q(self, sql, args=()):
        """Rows of a query (a list of tuples; [] for a statement)."""
        if self.kind == "postgresql":
            sql = sql.replace("?", "%s")
        with self.lock:
            cur = self.conn.execute(sql, tuple(args))
            return cur.fetchall() if cur.description else []

    def one(self, sql, args=()):
        rows = self.q(sql, args)
        return rows[0] if rows else None

    @contextmanager
    def tx(self, lock_table=None):
        """A transaction; lock_table: a writer's lock taken first (SQLite
        locks the whole file, PostgreSQL that table), so that a read-then-
        write inside cannot interleave with another process's."""
        with self.lock:
            if self.depth:                  # inside another: part of it
                if lock_table and self.kind == "postgresql":
                    self.conn.execute("LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE"
                                      % lock_table)
                yield self
                return
            self.depth += 1
            try:
                yield from self._tx(lock_table)
            finally:
                self.depth -= 1

    def _tx(self, lock_table):
        if self.kind == "sqlite":
            self.conn.execute("BEGIN IMMEDIATE" if lock_table else "BEGIN")
            try:
                yield self
                self.conn.execute("COMMIT")
            except BaseException:
                if self.conn.in_transaction:     # also a COMMIT that failed (locked)
                    self.conn.execute("ROLLBACK")
                raise
        else:
            with self.conn.transaction():
                if lock_table:
                    self.conn.execute("LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE"
                                      % lock_table)
                yield self

    # -- schema ----------------------------------------------------------------

    def version(self):
        if self.kind == "sqlite":
            return self.one("PRAGMA user_version")[0]
        self.q("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
        row = self.one("SELECT MAX(version) FROM schema_version")
        return row[0] or 0

    def migrate(self, upto=VERSION):
        """Bring the schema to `upto`; a newer schema than this code knows is
        refused (an older tool must not write into it)."""
        have = self.version()
        if have > VERSION:
            raise DbError("%s: schema %d is newer than this head-end (%d)"
                          % (self.url, have, VERSION))
        for ver, steps in MIGRATIONS:
            if have < ver <= upto:
                with self.tx():
                    for sql in steps:
                        self.q(sql.format(**TYPES[self.kind]))
                    if self.kind == "sqlite":
                        self.q("PRAGMA user_version=%d" % ver)
                    else:
                        self.q("INSERT INTO schema_version VALUES (?)", (ver,))
        return self.version()
