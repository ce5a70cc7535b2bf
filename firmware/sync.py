# WiFi/MQTT sync with the head-end, on micropython-lib's umqtt.simple.
#
# It runs in the meter's own loop and never blocks it for long: every socket
# operation has a timeout (umqtt.simple creates blocking sockets, so its socket
# module is given a shim that makes them time out), and each poll() does a
# bounded amount of work. A broker that is down, silent or half-open costs at
# most one timeout per poll, then exponential backoff with jitter.
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

from firmware.commands import ANYONE, HEADEND, Result, Session
from firmware.eventlog import kind_name
from firmware.meter import wh_text
from firmware.policy import STATES
from firmware.signing import canonical, hmac_sha256, same

IO_TIMEOUT_S = 0.25        # longest a single socket operation may block
BATCH = 8                  # messages sent per poll at most
KEEPALIVE_S = 30
BACKOFF_MIN_MS = 1000
BACKOFF_MAX_MS = 60000
MAX_CMD_BYTES = 2048
IPPROTO_TCP, TCP_NODELAY = 6, 1   # the numbers are the same on Linux and lwIP


class TimedSocket:
    """A socket whose blocking operations time out; notes when data last came."""

    def __init__(self, sock_mod, timeout):
        self._s = sock_mod.socket()
        self._timeout = timeout
        self._s.settimeout(timeout)
        try:
            # umqtt writes a packet in pieces: without TCP_NODELAY each QoS 1
            # round trip waits for the peer's delayed ACK.
            self._s.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1)
        except (OSError, AttributeError):
            pass
        self.last_rx = time.ticks_ms()

    def connect(self, addr):
        self._s.connect(addr)

    def write(self, buf, n=None):
        return self._s.write(buf if n is None else buf[:n])

    def read(self, n):
        data = self._s.read(n)
        if data:
            self.last_rx = time.ticks_ms()
        return data

    def setblocking(self, flag):
        if flag:
            self._s.settimeout(self._timeout)
        else:
            self._s.setblocking(False)

    def close(self):
        self._s.close()


class SocketShim:
    """Stands in for the socket module inside umqtt.simple."""

    def __init__(self, sock_mod, timeout):
        self._m = sock_mod
        self._timeout = timeout

    def socket(self, *a):
        return TimedSocket(self._m, self._timeout)

    def getaddrinfo(self, host, port, *a):
        return self._m.getaddrinfo(host, port)


def mqtt_module():
    """umqtt.simple with timed sockets: the one adaptation this code makes to
    it, done once. Both 1.3.4 (PyPI) and the current mip version refer to
    their socket module by the module-level name `socket`."""
    from umqtt import simple
    if not isinstance(getattr(simple, "socket"), SocketShim):
        import socket
        setattr(simple, "socket", SocketShim(socket, IO_TIMEOUT_S))
    return simple


class Sync:
    def __init__(self, app, commands, wifi, meter_id, key, host, port, user=None,
                 password=None, telemetry_s=60, outbox=None):
        self.app = app
        self.commands = commands
        self.wifi = wifi
        self.id = meter_id
        self.key = key
        self.host, self.port = host, port
        self.user, self.password = user, password
        self.telemetry_ms = telemetry_s * 1000
        self.outbox = outbox
        self.base = "meters/%s/" % meter_id
        self.client = None
        self.next_try = 0          # real ms of the next connection attempt
        self.backoff = BACKOFF_MIN_MS
        self.next_tele = None      # meter ms of the next telemetry snapshot
        self.inbox = []            # commands received, not yet run
        self.batch = []            # events read from the log, not yet sent
        self.tele_batch = []       # telemetry read from the outbox, not yet sent
        self.last_ping = 0
        self.stats = {"connects": 0, "failures": 0, "sent": 0, "rejected": 0}

    # -- connection ------------------------------------------------------------

    def connected(self):
        return self.client is not None

    def _fail(self, real_ms, why):
        self.stats["failures"] += 1
        if self.client is not None:
            try:
                self.client.sock.close()
            except Exception:
                pass
        self.client = None
        self.batch = []
        self.tele_batch = []
        # exponential backoff with +-50 % jitter, so a fleet does not stampede
        jitter = int.from_bytes(os.urandom(2), "little") % (self.backoff + 1)
        self.next_try = real_ms + self.backoff // 2 + jitter
        self.backoff = min(self.backoff * 2, BACKOFF_MAX_MS)

    def _connect(self, real_ms):
        simple = mqtt_module()
        c = simple.MQTTClient(self.id, self.host, self.port, self.user, self.password,
                              keepalive=KEEPALIVE_S)
        c.set_last_will(self.base + "status", "offline", retain=True, qos=1)
        c.set_callback(self._on_message)
        c.connect(clean_session=False)
        self.client = c
        c.publish(self.base + "status", b"online", retain=True, qos=1)
        c.subscribe(self.base + "cmd", qos=1)
        self.backoff = BACKOFF_MIN_MS
        self.last_ping = real_ms
        self.stats["connects"] += 1

    def _on_message(self, topic, msg):
        if len(self.inbox) < 16:
            self.inbox.append(msg)

    # -- the loop ----------------------------------------------------------------

    def poll(self, now_ms, real_ms):
        """Do a bounded share of the sync work. now_ms: the meter's clock;
        real_ms: a monotonic wall clock for network timing."""
        if self.next_tele is None:
            self.next_tele = now_ms
        if now_ms >= self.next_tele:
            self.next_tele = now_ms + self.telemetry_ms
            self._snapshot(now_ms)
        if self.client is None:
            if real_ms < self.next_try or not self.wifi.isconnected():
                return
            try:
                self._connect(real_ms)
            except Exception as e:
                self._fail(real_ms, e)
                return
        try:
            self._io(now_ms, real_ms)
        except Exception as e:
            self._fail(real_ms, e)

    def _io(self, now_ms, real_ms):
        c = self.client
        if c is None:
            return
        for _ in range(BATCH):
            if c.check_msg() is None and not self.inbox:
                break
        while self.inbox:
            self._command(self.inbox.pop(0), now_ms)
        for _ in range(BATCH):
            if not self._send_one():
                break
        # keepalive; a half-open connection shows as silence, then a timeout
        if time.ticks_diff(real_ms, self.last_ping) > KEEPALIVE_S * 500:
            c.ping()
            self.last_ping = real_ms
        if time.ticks_diff(real_ms, c.sock.last_rx) > KEEPALIVE_S * 1500:
            raise OSError(110)

    def _send_one(self):
        """Publish the next queued event, else telemetry; False if none."""
        ob, log, c = self.outbox, self.app.log, self.client
        if c is None:
            return False
        if ob.acked_event < log.seq:
            if not self.batch:
                self.batch = log.after(ob.acked_event, BATCH)
                if not self.batch:   # the log ring overwrote them: skip the gap
                    ob.save_cursor(log.seq, ob.acked_tele)
                    return True
            e = self.batch[0]
            seq, t, kind, value, detail = e
            c.publish(self.base + "events", json.dumps(
                {"seq": seq, "t": t, "event": kind_name(kind), "value": value,
                 "detail": detail}), qos=1)
            self.batch.pop(0)
            ob.save_cursor(seq, ob.acked_tele)
            self.stats["sent"] += 1
            return True
        if ob.acked_tele < ob.tseq:
            if not self.tele_batch:
                self.tele_batch = ob.telemetry_after(ob.acked_tele, BATCH)
                if not self.tele_batch:   # overwritten by newer ones: skip the gap
                    ob.save_cursor(ob.acked_event, ob.tseq)
                    return True
            tseq, t, credit, pulses, power, relay, state = self.tele_batch.pop(0)
            c.publish(self.base + "telemetry", json.dumps(
                {"tseq": tseq, "t": t, "credit": credit,
                 "energy_wh": wh_text(pulses, self.app.ledger.imp), "pulses": pulses,
                 "power_w": power, "relay": "closed" if relay else "open",
                 "state": STATES[state],
                 "clock": "synced" if self.app.clock.synced else "unsynced"}), qos=1)
            ob.save_cursor(ob.acked_event, tseq)
            self.stats["sent"] += 1
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
        if self.client is not None:
            self.client.publish(self.base + "reply", json.dumps(body), qos=1)

    def _reject(self, ctr, why, now_ms):
        self.stats["rejected"] += 1
        self.app.emit({"event": "cmd_rejected", "value": ctr if isinstance(ctr, int) else 0,
                       "detail": why}, now_ms)
        self._reply(ctr, error=why)

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
            # unsigned: only what anyone may do at the console, and no arguments
            # (`relay open` needs a technician, `relay` does not)
            entry = self.commands.table.get(cmd)
            # a token authenticates itself: anyone may send one
            if entry is not None and (entry[1] > ANYONE or (args and cmd != "token")):
                return self._reject(ctr, "signature required", now_ms)
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
        if ctr <= (s.get("hc_ctr") or 0):
            return self._reject(ctr, "replayed command (counter %d not above %d)"
                                % (ctr, s.get("hc_ctr") or 0), now_ms)
        if exp and self.app.clock.synced and self.app.clock.now(now_ms) > exp:
            return self._reject(ctr, "expired command", now_ms)
        s.save({"hc_ctr": ctr})      # before running: never twice, whatever happens
        if cmd == "resend":
            return self._resend(ctr, args)
        self._reply(ctr, self.commands.run(Session(HEADEND, now_ms), [cmd] + args, now_ms))

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
            self.batch = []
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
