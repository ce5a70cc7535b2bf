# What the meter owes the head-end, and how far the broker has taken it:
# every event after the acknowledged cursor, then the queued telemetry, in
# order, a window of QoS 1 messages at a time. The cursor lives on flash
# (firmware/outbox.py) and moves on the broker's PUBACKs, which come in order;
# a message whose PUBACK was lost is sent again after a reconnect, so the
# head-end de-duplicates by seq. The transport (firmware/sync.py) publishes.

import json

from firmware.eventlog import kind_name
from firmware.meter import wh_text
from firmware.policy import STATES

WINDOW = 8                 # QoS 1 messages in flight (sent, PUBACK not yet seen)


class Delivery:
    def __init__(self, app, outbox, telemetry_s=60):
        self.app = app
        self.outbox = outbox
        self.telemetry_ms = telemetry_s * 1000
        self.next_tele = None      # meter ms of the next telemetry snapshot
        self.inflight = []         # [pid, kind, seq, acked] in the order sent
        self.acked_any = False     # the broker has acknowledged a message since boot
        self.sent_event = 0        # newest event seq published on this connection
        self.sent_tele = 0
        self.batch = []            # events read from the log, not yet sent
        self.tele_batch = []       # telemetry read from the outbox, not yet sent

    def tick(self, now_ms):
        """Queue a telemetry snapshot when one is due (online or not)."""
        if self.next_tele is None:
            self.next_tele = now_ms
        if now_ms >= self.next_tele:
            self.next_tele = now_ms + self.telemetry_ms
            st = self.app.status(now_ms)
            self.outbox.add_telemetry(st["wall"], st["credit"], st["pulses"], st["power_w"],
                                      st["relay"] == "closed", st["state"] or "ok")

    def drop(self):
        """The connection is gone, and what was in flight with it."""
        self.inflight, self.batch, self.tele_batch = [], [], []

    def restart(self):
        """A new connection: send again from the cursor."""
        self.drop()
        self.sent_event, self.sent_tele = self.outbox.acked_event, self.outbox.acked_tele

    def room(self):
        return len(self.inflight) < WINDOW

    def sent(self, pid, kind, seq):
        """A QoS 1 message is out (kind "event", "telemetry", or None for a
        reply or status, which hold a place in the window but no cursor)."""
        self.inflight.append([pid, kind, seq, False])

    def acked(self, pid):
        """The broker has a message: the cursor moves past every message
        before it that is acknowledged too (PUBACKs come in order)."""
        for m in self.inflight:
            if m[0] == pid:
                m[3] = self.acked_any = True
        ob = self.outbox
        while self.inflight and self.inflight[0][3]:
            _, kind, seq, _ = self.inflight.pop(0)
            if kind == "event":
                ob.save_cursor(seq, ob.acked_tele)
            elif kind == "telemetry":
                ob.save_cursor(ob.acked_event, seq)

    def rewind(self, first):
        """The head-end missed events from `first` on (a broker that crashed
        after acknowledging them): deliver again from there."""
        ob = self.outbox
        if first - 1 < ob.acked_event:
            ob.save_cursor(first - 1, ob.acked_tele)
        if first - 1 < self.sent_event:
            self.sent_event = first - 1
            self.batch = []
            for m in self.inflight:     # their PUBACKs must not move the cursor now
                if m[1] == "event":
                    m[1] = None

    def _lost(self, first, last, now_ms):
        """Events first..last were dropped by the log ring before delivery: an
        event with the range and an alarm, never silence."""
        self.app.alarm("events_lost", now_ms, "%d-%d" % (first, last))
        self.app.emit({"event": "events_lost", "value": last - first + 1,
                       "detail": "%d-%d" % (first, last)}, now_ms)

    def next(self, now_ms):
        """(topic, JSON text, kind, seq) of the next message owed, or None."""
        ob, log = self.outbox, self.app.log
        while self.sent_event < log.seq:
            if not self.batch:
                self.batch = log.after(self.sent_event, WINDOW)
                first = self.batch[0][0] if self.batch else log.seq + 1
                if first > self.sent_event + 1:
                    # the log ring overwrote events never delivered: say so
                    self._lost(self.sent_event + 1, first - 1, now_ms)
                if not self.batch:
                    self.sent_event = log.seq
                    if not self.inflight:
                        ob.save_cursor(log.seq, ob.acked_tele)
                    continue
            seq, t, kind, value, detail = self.batch.pop(0)
            self.sent_event = seq
            return "events", json.dumps({"seq": seq, "t": t, "event": kind_name(kind),
                                         "value": value, "detail": detail}), "event", seq
        while self.sent_tele < ob.tseq:
            if not self.tele_batch:
                self.tele_batch = ob.telemetry_after(self.sent_tele, WINDOW)
                if not self.tele_batch:   # overwritten by newer ones: skip the gap
                    self.sent_tele = ob.tseq
                    if not self.inflight:
                        ob.save_cursor(ob.acked_event, ob.tseq)
                    continue
            tseq, t, credit, pulses, power, relay, state = self.tele_batch.pop(0)
            self.sent_tele = tseq
            return "telemetry", json.dumps(
                {"tseq": tseq, "t": t, "credit": credit,
                 "energy_wh": wh_text(pulses, self.app.ledger.imp), "pulses": pulses,
                 "power_w": power, "relay": "closed" if relay else "open",
                 "state": STATES[state],
                 "clock": "synced" if self.app.clock.synced else "unsynced"}), "telemetry", tseq
        return None
