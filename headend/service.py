"""The head-end service's core: one persistent MQTT session that hears every
meter, an ingest thread that checks each message's seal and stores it, and the
operator's actions, each journalled before its signed command is published
(headend/journal.py) and sent again whenever the meter comes back online."""

import collections
import json
import queue
import threading
import time
import traceback

from headend import protocol
from headend.broker import client as mqtt_client, nodelay
from headend.journal import ACTION, Journal, JournalError, vend_command
from headend.store import Store

CLIENT_ID = "headend"       # the broker keeps this session while the service is away
TOPICS = ("telemetry", "events", "reply", "status")
BATCH = 200                 # messages stored per transaction
RESEND_S = 60               # a pending command unanswered this long is sent again
SWEEP_S = 15


class Service:
    def __init__(self, db, broker, login=None, tls=None, client_id=CLIENT_ID):
        self.db = db
        self.journal = Journal(db)
        self.store = Store(db)
        self.broker = broker
        self.q = queue.Queue()
        self.lags = collections.deque(maxlen=20000)    # receive -> committed, seconds
        self.counts = collections.Counter()
        self.asked = {}             # meter -> the seq a resend was asked from
        self.back = {}              # meter -> when it last came online (resends)
        self.gaps = []              # (meter, first missing seq) seen in this batch
        self.sending = threading.Lock()
        self.stopping = threading.Event()
        self.connected = threading.Event()
        # manual_ack: a message is acknowledged to the broker only once it is
        # committed, so one in flight when the service dies comes again
        c = self.client = mqtt_client(client_id, False, login, tls, manual_ack=True)
        c.on_connect = self._on_connect
        c.on_disconnect = lambda *a: self.connected.clear()
        c.on_message = lambda cl, u, m: self.q.put((time.time(), m.topic, m.payload,
                                                    m.mid, m.qos))
        c.reconnect_delay_set(1, 30)
        self.worker = threading.Thread(target=self._ingest, name="ingest", daemon=True)

    def start(self):
        self.client.connect_async(self.broker[0], self.broker[1], keepalive=30)
        self.client.loop_start()
        self.worker.start()
        return self

    def stop(self):
        self.stopping.set()
        self.worker.join(10)
        self.client.loop_stop()
        self.client.disconnect()

    def _on_connect(self, client, userdata, flags, rc, props=None):
        if rc.is_failure:
            self.counts["connect_refused"] += 1
            return
        nodelay(client)
        client.subscribe([("meters/+/%s" % t, 1) for t in TOPICS])
        self.connected.set()

    # -- ingest ----------------------------------------------------------------------

    def _ingest(self):
        last_sweep = time.time()
        while not self.stopping.is_set():
            try:
                batch = [self.q.get(timeout=0.5)]
            except queue.Empty:
                batch = []
            while batch and len(batch) < BATCH:
                try:
                    batch.append(self.q.get_nowait())
                except queue.Empty:
                    break
            while batch and not self._store_or_wait(batch):
                pass
            try:
                if time.time() - last_sweep > SWEEP_S:
                    last_sweep = time.time()
                    self.sweep()
            except Exception:
                self.counts["errors"] += 1
                traceback.print_exc()

    def _store_or_wait(self, batch):
        """Store a batch and send what meters back online are owed; on an
        error (the database unreachable) say so, wait, and have it tried
        again: unacknowledged, the broker would send nothing more."""
        try:
            for mid in self._store(batch):
                # what was sent before it was online may be lost; a meter that
                # flaps (status is anyone's to publish) gets it once a minute
                now = time.time()
                older = 0 if now - self.back.get(mid, 0) > RESEND_S else RESEND_S
                self.back[mid] = now
                self.resend_pending(mid, older)
            return True
        except Exception:
            self.counts["errors"] += 1
            traceback.print_exc()
            self.stopping.wait(2)
            return self.stopping.is_set()

    def _store(self, batch):
        """Store a batch in one transaction, then acknowledge it and ask for
        the events it showed missing (commands are sent outside the
        transaction: send() takes its lock before the database's)."""
        back, self.gaps = set(), []
        if batch:
            with self.db.tx():
                for at, topic, payload, _, _ in batch:
                    back |= self._take(at, topic, payload)
            now = time.time()
            self.lags.extend(now - m[0] for m in batch)
            for m in batch:
                if m[4]:
                    self.client.ack(m[3], m[4])
        for mid, gap in self.gaps:
            self.send(mid, "resend", [gap], "")
        return back

    def _take(self, at, topic, payload):
        """Store one message; the meters that have just come online."""
        parts = topic.split("/")
        if len(parts) != 3 or parts[2] not in TOPICS:
            return set()
        mid, kind = parts[1], parts[2]
        if kind == "status":                # the broker's word, not the meter's
            if payload in (b"online", b"offline") and \
                    self.store.status(mid, payload == b"online", at):
                return {mid}
            return set()
        try:
            body = protocol.opened(self.store.key(mid), mid, kind, payload)
            if kind == "telemetry":
                came_back = self.store.telemetry(mid, body, at)
                self.counts["telemetry"] += 1
                return {mid} if came_back else set()
            if kind == "events":
                gap = self.store.event(mid, body, at)
                self.journal.event(mid, body)
                self.counts["events"] += 1
                if gap is not None and self.asked.get(mid) != gap:
                    self.asked[mid] = gap       # once per gap: lost ones never come
                    self.gaps.append((mid, gap))
            else:
                self.journal.reply(mid, body)
                self.counts["replies"] += 1
        except protocol.Forged:
            self.counts["forged"] += 1
        except (KeyError, ValueError, TypeError):
            self.counts["malformed"] += 1      # sealed but not what a meter sends
        return set()

    # -- commands ----------------------------------------------------------------------

    def send(self, mid, cmd, args, ref):
        """Sign and publish; a journalled command (ref) is recorded first. One
        at a time: the meter refuses a counter below one it has run."""
        with self.sending:
            payload = protocol.command(self.store.key(mid), mid, self.store.next_ctr(mid),
                                       cmd, args)
            if ref:
                self.journal.sent(mid, payload["ctr"], ref, cmd)
            self.client.publish("meters/%s/cmd" % mid, json.dumps(payload), qos=1)
        return payload["ctr"]

    def vend(self, mid, amount, by="", ref=None):
        row = self.journal.vend(mid, amount, ref, by)
        if row["status"] == "pending":
            self.send(mid, *vend_command(row), row["ref"])
        return row

    def act(self, mid, cmd, args, by=""):
        row = self.journal.action(mid, cmd, args, by)
        self.send(mid, cmd, args, ACTION + str(row["id"]))
        return row

    def cancel(self, mid, ref, by=""):
        """Ask the meter to make sure a pending vend never lands (its signed
        `cancel`, journalled like any command). The vend turns `cancelled`
        when the meter confirms it; until then it stays pending and is no
        longer sent; if it had landed already, the cancel is refused."""
        row = self.journal.get(ref)
        if row is None or row["meter"] != mid or row["status"] != "pending":
            raise JournalError("vend %s is not a pending vend of %s" % (ref, mid))
        return self.act(mid, *vend_command(row, "cancel"), by=by)

    def token(self, mid, kind, value, by="", extended=False):
        with self.db.tx(lock_table="meters"):     # two at once must not share a count
            m = self.store.meter(mid)
            count, digits = protocol.token(m["token_key"], m["token_start"],
                                           m["token_restricted"], m["token_count"], kind,
                                           value, extended)
            self.store.token_count(mid, count)
            self.store.add_token(mid, digits, kind, value, count, by)
        return digits

    def resend_pending(self, mid, older):
        """Every pending vend and action of the meter not sent in the last
        `older` seconds, again (the meter lands each vend at most once)."""
        now = time.time()
        actions = self.journal.actions(mid, "pending")
        cancelling = {a["args"][0] for a in actions if a["cmd"] == "cancel"}
        for row in self.journal.list(mid, "pending"):
            if row["ref"] in cancelling:
                continue
            if now - (self.journal.last_sent(row["ref"]) or 0) > older:
                self.send(mid, *vend_command(row), row["ref"])
                self.counts["resent"] += 1
        for a in actions:
            ref = ACTION + str(a["id"])
            if now - (self.journal.last_sent(ref) or 0) > older:
                self.send(mid, a["cmd"], a["args"], ref)
                self.counts["resent"] += 1

    def sweep(self):
        """Pending commands of online meters that went unanswered."""
        rows = self.db.q("SELECT DISTINCT v.meter FROM vends v JOIN meters m ON m.id = v.meter "
                         "WHERE v.status = 'pending' AND m.online = 1 UNION SELECT DISTINCT "
                         "a.meter FROM actions a JOIN meters m ON m.id = a.meter WHERE "
                         "a.status = 'pending' AND m.online = 1")
        for (mid,) in rows:
            self.resend_pending(mid, RESEND_S)

    def stats(self):
        lags = sorted(self.lags)
        pick = (lambda q: round(lags[min(len(lags) - 1, int(q * len(lags)))] * 1000, 1)) \
            if lags else (lambda q: None)
        return dict(self.counts, queued=self.q.qsize(), lag_p50_ms=pick(0.5),
                    lag_p99_ms=pick(0.99), lag_max_ms=pick(1.0),
                    broker=self.connected.is_set())
