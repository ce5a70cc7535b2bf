# WiFi/MQTT sync with the head-end, on micropython-lib's umqtt.simple.
#
# It runs in the meter's own loop and never waits on the network: umqtt.simple
# talks through a non-blocking firmware.mqttlink.Link, QoS 1 messages go out in
# a window of WINDOW and are matched with their PUBACKs as those come, and the
# broker's name is resolved once by the HAL (in the background on a board,
# where getaddrinfo has no timeout). A broker that is down, silent or half-open
# ends the connection; then exponential backoff with jitter. Why a connection
# failed is kept (status `mqtt_error`) and logged when it changes.
#
# Topics (docs/mqtt.md), under meters/<id>/:
#   status    retained "online" / "offline" (last will)
#   events    QoS 1, one per event-log record, with its sequence number
#   telemetry QoS 1, periodic snapshots, queued in flash while offline
#   cmd       commands from the head-end (subscribed, QoS 1)
#   reply     QoS 1, one per command

import json
import os
import time

from firmware import mqttlink
from firmware.commands import ANYONE, HEADEND, Result, Session
from firmware.eventlog import kind_name
from firmware.meter import wh_text
from firmware.policy import STATES
from firmware.signing import Hmac, canonical, hmac_sha256, same, seal

WINDOW = 8                 # QoS 1 messages in flight (sent, PUBACK not yet seen)
KEEPALIVE_S = 30
CONNECT_TIMEOUT_MS = 20000  # TCP + CONNACK, however slow the path
BACKOFF_MIN_MS = 1000
BACKOFF_MAX_MS = 60000
MAX_CMD_BYTES = 2048
MAX_UNSENT = 8192          # bytes queued for a broker that does not read them
SESSION_MS = 120000        # a head-end session's state (a pending confirmation) lasts
MAX_CTR = 1 << 48          # counters above are refused: one could lock out every later one
CMDS_PER_TURN = 32         # commands read per loop turn; the rest wait at the broker
# Anyone on the broker may publish to cmd. What is not a valid signed command
# (an unsigned read, or anything refused) gets a reply, and a refusal an event,
# for the first FLOOD_BUDGET of each FLOOD_WINDOW_MS; the rest of the window's
# are counted, unanswered, into one `cmd_flood` event. A flood then costs the
# event log at most 11 records a minute (a 4-sector log reaches 100,000 erases
# after 7 years of it), and signed commands are never limited.
FLOOD_BUDGET = 10
FLOOD_WINDOW_MS = 60000
# Unsigned commands: reads, and the customer's token (it authenticates itself).
# Not the button or emergency credit: anyone on the broker could press them.
UNSIGNED = ("help", "status", "energy", "credit", "relay", "tariff", "time", "config",
            "log", "alarms", "token")


class Shim:
    """Stands in for the socket module inside umqtt.simple: its socket is a
    mqttlink.Link and its name lookup answers from the address the sync
    resolved beforehand (a board's getaddrinfo has no timeout)."""

    def __init__(self, sock_mod):
        self._m = sock_mod
        self.addr = None

    def socket(self, *a):
        return mqttlink.Link(self._m)

    def getaddrinfo(self, host, port, *a):
        return [(2, 1, 0, "", self.addr)]


def mqtt_module():
    """umqtt.simple, and the errors a broken or hostile peer can make it raise
    (its protocol checks are asserts; short reads index empty bytes). Every
    version (1.3.4 on PyPI, 1.6-1.8 frozen on boards) calls its socket module
    by the module-level name `socket`: the shim goes there, once."""
    from umqtt import simple
    if not isinstance(getattr(simple, "socket"), Shim):
        import socket
        setattr(simple, "socket", Shim(socket))
    return simple, (OSError, simple.MQTTException, AssertionError, IndexError, TypeError)


def describe(e):
    """A short reason for status and the event log (its detail holds 16
    characters): `OSError 111`, or our own words (`WiFi down`, `broker silent`)."""
    if isinstance(e, OSError) and e.args:
        return ("OSError %d" % e.args[0]) if isinstance(e.args[0], int) else str(e.args[0])
    name = type(e).__name__
    return ("%s %s" % (name, e.args[0])) if e.args else name


class Sync:
    def __init__(self, app, commands, wifi, meter_id, key, host, port, user=None,
                 password=None, telemetry_s=60, outbox=None):
        self.app = app
        app.sync = self
        self.commands = commands
        self.wifi = wifi
        self.id = meter_id
        self.key = key
        self.mac = Hmac(key)       # seals everything the meter publishes
        self.host, self.port = host, port
        self.user, self.password = user, password
        self.telemetry_ms = telemetry_s * 1000
        self.outbox = outbox
        self.base = "meters/%s/" % meter_id
        self.client = None         # umqtt's MQTTClient
        self.link = None           # its mqttlink.Link
        self.online = False        # CONNACK seen
        self.addr = None           # the broker's address, resolved once
        self.next_try = None       # real ms of the next connection attempt
        self.backoff = BACKOFF_MIN_MS
        self.next_tele = None      # meter ms of the next telemetry snapshot
        self.now_ms = 0            # the meter's clock in this poll (commands run in umqtt's callback)
        self.flood_start = None    # meter ms the current flood window began
        self.flood_seen = 0        # unauthenticated messages in it
        self.inflight = []         # [pid, kind, seq, acked] in the order sent
        self.sent_event = 0        # newest event seq published on this connection
        self.sent_tele = 0
        self.pid = 0
        self.batch = []            # events read from the log, not yet sent
        self.tele_batch = []       # telemetry read from the outbox, not yet sent
        self.last_rx = self.last_ping = self.started = 0
        self.last_error = ""
        self.session = None        # the head-end's command session
        self.action = None         # "reboot": asked for by a signed command
        self.stats = {"connects": 0, "failures": 0, "sent": 0, "rejected": 0, "commands": 0,
                      "ignored": 0}

    # -- connection ------------------------------------------------------------

    def connected(self):
        return self.online

    def state(self):
        if self.online:
            return "connected"
        return "connecting" if self.client is not None else "offline"

    def _error(self, why, now_ms):
        """The reason a connection failed, in status, and in the event log
        when it changes."""
        if why != self.last_error:
            self.last_error = why
            self.app.emit({"event": "mqtt_error", "detail": why}, now_ms)

    def disconnect(self):
        if self.link is not None:
            try:
                self.link.close()
            except OSError:
                pass
        self.client = self.link = None
        self.online = False
        self.inflight = []
        self.batch = []
        self.tele_batch = []

    def _fail(self, real_ms, now_ms, why):
        self.stats["failures"] += 1
        self.disconnect()
        self._error(why, now_ms)
        # exponential backoff with +-50 % jitter, so a fleet does not stampede
        jitter = int.from_bytes(os.urandom(2), "little") % (self.backoff + 1)
        self.next_try = time.ticks_add(real_ms, self.backoff // 2 + jitter)
        self.backoff = min(self.backoff * 2, BACKOFF_MAX_MS)

    def _connect(self, real_ms):
        """Start a connection: umqtt writes CONNECT into the link and would
        wait for CONNACK; the link says Pending and the loop goes on."""
        simple, _ = mqtt_module()
        simple.socket.addr = self.addr
        c = simple.MQTTClient(self.id, self.host, self.port, self.user, self.password,
                              keepalive=KEEPALIVE_S)
        c.set_last_will(self.base + "status", "offline", retain=True, qos=1)
        c.set_callback(self._on_message)
        self.client = c
        self.started = self.last_rx = real_ms
        try:
            c.connect(clean_session=False)
        except mqttlink.Pending:
            pass
        finally:
            self.link = c.sock    # closed by disconnect() whatever happened

    def _connack(self, link, real_ms, now_ms):
        if len(link.inp) < 4:
            if time.ticks_diff(real_ms, self.started) > CONNECT_TIMEOUT_MS:
                raise OSError("no CONNACK")
            return
        r = link.read(4)
        if r[0] != 0x20 or r[1] != 2:
            raise OSError("not an MQTT broker")
        if r[3]:
            raise OSError("refused rc=%d" % r[3])
        self.online = True
        self.backoff = BACKOFF_MIN_MS
        self.last_ping = real_ms
        self.stats["connects"] += 1
        ob = self.outbox
        self.sent_event, self.sent_tele = ob.acked_event, ob.acked_tele
        self._error("", now_ms)
        self._publish("status", b"online", None, 0, retain=True)
        link.write(mqttlink.subscribe(self.base + "cmd", self._next_pid()))

    def _on_message(self, topic, msg):
        # Run the command here, inside umqtt's wait_msg: it writes the PUBACK
        # only after this returns, so nothing is acknowledged before it was
        # carried out (and on flash, where it changes anything).
        self.stats["commands"] += 1
        self._command(msg, self.now_ms)

    # -- the loop ----------------------------------------------------------------

    def poll(self, now_ms, real_ms):
        """Do a bounded share of the sync work; never waits on the network.
        now_ms: the meter's clock; real_ms: time.ticks_ms() (it wraps)."""
        if self.next_tele is None:
            self.next_tele = now_ms
        if now_ms >= self.next_tele:
            self.next_tele = now_ms + self.telemetry_ms
            self._snapshot(now_ms)
        self.now_ms = now_ms
        if self.flood_start is not None and now_ms - self.flood_start >= FLOOD_WINDOW_MS:
            self._flood_end(now_ms)
        _, errors = mqtt_module()
        try:
            if self.client is not None and not self.wifi.isconnected():
                # the link is gone with the WiFi: do not write into a dead socket
                raise OSError("WiFi down")
            if self.client is None:
                if self.next_try is not None and time.ticks_diff(real_ms, self.next_try) < 0:
                    return
                if not self.wifi.isconnected():
                    return
                if self.addr is None:
                    self.addr = self.wifi.resolve(self.host, self.port)
                    if self.addr is None:
                        return        # the lookup is still running
                self._connect(real_ms)
            self._io(now_ms, real_ms)
        except errors as e:
            self._fail(real_ms, now_ms, describe(e))

    def _io(self, now_ms, real_ms):
        c, link = self.client, self.link
        if c is None or link is None:
            return
        link.pump()
        if link.received:
            link.received = False
            self.last_rx = real_ms
        if not self.online:
            self._connack(link, real_ms, now_ms)
            if not self.online:
                return
        n = link.packet_len()
        if link.dropped:
            link.dropped = 0
            self._reject(None, "command too long", now_ms)
        cmds = 0
        while n and cmds < CMDS_PER_TURN:
            op = link.inp[0] & 0xF0
            if op == 0x30:
                c.check_msg()     # umqtt parses it, runs it (_on_message), then PUBACKs
                cmds += 1
            else:
                self._control(op, link.read(n))
            n = link.packet_len()
        while len(self.inflight) < WINDOW and self._send_one(now_ms):
            pass
        if len(link.out) > MAX_UNSENT:
            raise OSError("broker not reading")
        link.pump()
        # keepalive; a half-open connection shows as silence
        if time.ticks_diff(real_ms, self.last_ping) > KEEPALIVE_S * 500:
            link.write(b"\xc0\0")
            self.last_ping = real_ms
        if time.ticks_diff(real_ms, self.last_rx) > KEEPALIVE_S * 1500:
            raise OSError("broker silent")

    def _control(self, op, pkt):
        """An acknowledgement: PUBACK frees its message, SUBACK must grant."""
        if op == 0x40 and len(pkt) == 4:
            self._acked((pkt[2] << 8) | pkt[3])
        elif op == 0x90 and len(pkt) >= 5 and pkt[4] == 0x80:
            raise OSError("subscription refused")

    def _next_pid(self):
        self.pid = self.pid % 65535 + 1
        return self.pid

    def _publish(self, topic, payload, kind, seq, retain=False):
        link = self.link
        if link is None:
            return
        pid = self._next_pid()
        if payload[:1] == "{":      # events, telemetry, replies: signed (docs/mqtt.md)
            payload = seal(self.mac, self.id, topic, payload)
        link.write(mqttlink.publish_qos1(self.base + topic, payload, pid, retain))
        self.inflight.append([pid, kind, seq, False])
        self.stats["sent"] += 1

    def _acked(self, pid):
        """The broker has a message: the cursor moves past every message
        before it that is acknowledged too (PUBACKs come in order)."""
        for m in self.inflight:
            if m[0] == pid:
                m[3] = True
        ob = self.outbox
        while self.inflight and self.inflight[0][3]:
            _, kind, seq, _ = self.inflight.pop(0)
            if kind == "event":
                ob.save_cursor(seq, ob.acked_tele)
            elif kind == "telemetry":
                ob.save_cursor(ob.acked_event, seq)

    def _lost(self, first, last, now_ms):
        """Events first..last were dropped by the log ring before delivery: an
        event with the range and an alarm, never silence."""
        self.app.alarm("events_lost", now_ms, "%d-%d" % (first, last))
        self.app.emit({"event": "events_lost", "value": last - first + 1,
                       "detail": "%d-%d" % (first, last)}, now_ms)

    def _send_one(self, now_ms):
        """Publish the next queued event, else telemetry; False if none."""
        ob, log = self.outbox, self.app.log
        if self.sent_event < log.seq:
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
                    return True
            seq, t, kind, value, detail = self.batch.pop(0)
            self._publish("events", json.dumps(
                {"seq": seq, "t": t, "event": kind_name(kind), "value": value,
                 "detail": detail}), "event", seq)
            self.sent_event = seq
            return True
        if self.sent_tele < ob.tseq:
            if not self.tele_batch:
                self.tele_batch = ob.telemetry_after(self.sent_tele, WINDOW)
                if not self.tele_batch:   # overwritten by newer ones: skip the gap
                    self.sent_tele = ob.tseq
                    if not self.inflight:
                        ob.save_cursor(ob.acked_event, ob.tseq)
                    return True
            tseq, t, credit, pulses, power, relay, state = self.tele_batch.pop(0)
            self._publish("telemetry", json.dumps(
                {"tseq": tseq, "t": t, "credit": credit,
                 "energy_wh": wh_text(pulses, self.app.ledger.imp), "pulses": pulses,
                 "power_w": power, "relay": "closed" if relay else "open",
                 "state": STATES[state],
                 "clock": "synced" if self.app.clock.synced else "unsynced"}),
                "telemetry", tseq)
            self.sent_tele = tseq
            return True
        return False

    def _snapshot(self, now_ms):
        a = self.app
        st = a.status(now_ms)
        self.outbox.add_telemetry(st["wall"], st["credit"], st["pulses"], st["power_w"],
                                  st["relay"] == "closed", st["state"] or "ok")

    # -- commands ----------------------------------------------------------------

    def _reply(self, ctr, result=None, error=None):
        body = {"ctr": ctr, "ok": error is None and result is not None and result.ok}
        if result is not None:
            body["lines"] = result.lines
            if not result.ok:
                body["error"] = result.error
        if error is not None:
            body["error"] = error
        if self.online:
            self._publish("reply", json.dumps(body), None, 0)

    def _reject(self, ctr, why, now_ms):
        self.stats["rejected"] += 1
        if self._over_budget(now_ms):
            return
        self.app.emit({"event": "cmd_rejected", "value": ctr if isinstance(ctr, int) else 0,
                       "detail": why}, now_ms)
        self._reply(ctr, error=why)

    def _over_budget(self, now_ms):
        """Count one message that is not a valid signed command; True when
        this window's budget is spent (it is then ignored: no reply, no event)."""
        if self.flood_start is None:
            self.flood_start, self.flood_seen = now_ms, 0
        self.flood_seen += 1
        if self.flood_seen <= FLOOD_BUDGET:
            return False
        self.stats["ignored"] += 1
        return True

    def _flood_end(self, now_ms):
        n = self.flood_seen - FLOOD_BUDGET
        if n > 0:
            self.app.emit({"event": "cmd_flood", "value": n,
                           "detail": "ignored in %d s" % ((now_ms - self.flood_start) // 1000)},
                          now_ms)
        self.flood_start = None

    def _command(self, msg, now_ms):
        """Check and run one head-end command. A command that changes anything
        must be signed with the meter's key and carry a counter above every
        one seen; a replayed, forged, expired or malformed one is refused with
        an error reply and an event, and changes nothing."""
        if len(msg) > MAX_CMD_BYTES:
            return self._reject(None, "command too long", now_ms)
        try:
            c = json.loads(msg)
            ctr, cmd, args = c["ctr"], c["cmd"], c.get("args", [])
            exp, sig = c.get("exp", 0), c.get("sig")
            if not (isinstance(ctr, int) and isinstance(cmd, str) and isinstance(exp, int)
                    and isinstance(args, list) and all(isinstance(a, str) for a in args)):
                raise ValueError
        except (ValueError, KeyError, TypeError):
            return self._reject(None, "malformed command", now_ms)
        if sig is None:
            # unsigned: reads with no arguments (`relay open` changes, `relay`
            # does not), and tokens
            if cmd in self.commands.table and (cmd not in UNSIGNED
                                               or (args and cmd != "token")):
                return self._reject(ctr, "signature required", now_ms)
            if self._over_budget(now_ms):
                return
            return self._reply(ctr, self.commands.run(Session(ANYONE, now_ms), [cmd] + args,
                                                      now_ms))
        try:
            want = hmac_sha256(self.key, canonical(self.id, ctr, exp, cmd, args))
            good = isinstance(sig, str) and same(want, bytes.fromhex(sig))
        except ValueError:
            good = False
        if not good:
            return self._reject(ctr, "bad signature", now_ms)
        s = self.app.settings
        if not 0 < ctr < MAX_CTR:
            return self._reject(ctr, "counter out of range (1..%d)" % (MAX_CTR - 1), now_ms)
        if ctr <= (s.get("hc_ctr") or 0):
            return self._reject(ctr, "replayed command (counter %d not above %d)"
                                % (ctr, s.get("hc_ctr") or 0), now_ms)
        if exp and self.app.clock.synced and self.app.clock.now(now_ms) > exp:
            return self._reject(ctr, "expired command", now_ms)
        s.save({"hc_ctr": ctr})      # before running: never twice, whatever happens
        if cmd == "resend":
            return self._resend(ctr, args)
        ses = self.session
        if ses is None or now_ms - ses.last_ms > SESSION_MS:
            # one head-end session, kept between commands: a factory reset's
            # confirmation code is asked for by one command and given by the next
            ses = self.session = Session(HEADEND, now_ms)
        ses.last_ms = now_ms
        ses.level = HEADEND        # a signed command is the head-end's, whatever came before
        r = self.commands.run(ses, [cmd] + args, now_ms)
        self._reply(ctr, r)
        if r.action == "reboot":
            self.action = "reboot"     # the shell carries it out after this poll

    def _resend(self, ctr, args):
        """The head-end missed events (a broker that crashed after it had
        acknowledged them): publish again from event FROM, while the log
        still holds it."""
        try:
            first = int(args[0])
            if len(args) != 1 or first < 1:
                raise ValueError
        except (ValueError, IndexError):
            return self._reply(ctr, error="usage: resend FROM_SEQ")
        ob = self.outbox
        if first - 1 < ob.acked_event:
            ob.save_cursor(first - 1, ob.acked_tele)
        if first - 1 < self.sent_event:
            self.sent_event = first - 1
            self.batch = []
            for m in self.inflight:     # their PUBACKs must not move the cursor now
                if m[1] == "event":
                    m[1] = None
        self._reply(ctr, Result(["resend_from=%d" % first]))


def from_settings(app, wifi, outbox):
    """The sync a provisioned meter runs, or None when it has no broker, id
    or key yet."""
    s = app.settings
    if not (s.get("mqtt_host") and s.get("meter_id") and s.get("hc_key")):
        return None
    from firmware.commands import Commands
    return Sync(app, Commands(app), wifi, s.get("meter_id"), bytes.fromhex(s.get("hc_key")),
                s.get("mqtt_host"), s.get("mqtt_port"), s.get("mqtt_user") or None,
                s.get("mqtt_pass") or None, s.get("telemetry_s"), outbox)
