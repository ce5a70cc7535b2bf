# WiFi/MQTT sync with the head-end, on micropython-lib's umqtt.simple.
#
# It runs in the meter's own loop and never waits on the network: umqtt.simple
# talks through a non-blocking firmware.mqttlink.Link, what the meter owes the
# head-end goes out through firmware.delivery (a window of QoS 1 messages,
# matched with their PUBACKs as those come), commands are checked by
# firmware.remote, and the broker's name is resolved once by the HAL (in the
# background on a board, where getaddrinfo has no timeout). A broker that is
# down, silent or half-open ends the connection; then exponential backoff
# with jitter. Why a connection
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
from firmware.delivery import Delivery
from firmware.mqttlink import describe, mqtt_module
from firmware.remote import Desk
from firmware.signing import Hmac, seal

KEEPALIVE_S = 30
CONNECT_TIMEOUT_MS = 20000  # TCP + CONNACK, however slow the path
BACKOFF_MIN_MS = 1000
BACKOFF_MAX_MS = 60000
MAX_UNSENT = 8192          # bytes queued for a broker that does not read them
CMDS_PER_TURN = 32         # commands read per loop turn; the rest wait at the broker


class Sync:
    def __init__(self, app, commands, wifi, meter_id, key, host, port, user=None,
                 password=None, telemetry_s=60, outbox=None, tls=None):
        """tls: None for plain MQTT, else (CA store, pin) (firmware/tls.py)."""
        self.app = app
        app.sync = self
        self.wifi = wifi
        self.id = meter_id
        self.mac = Hmac(key)       # seals everything the meter publishes
        self.host, self.port = host, port
        self.user, self.password = user, password
        self.tls = tls
        self.ctx = None            # the SSLContext, made at the first TLS connection
        self.base = "meters/%s/" % meter_id
        self.client = None         # umqtt's MQTTClient
        self.link = None           # its mqttlink.Link
        self.online = False        # CONNACK seen
        self.addr = None           # the broker's address, resolved once
        self.next_try = None       # real ms of the next connection attempt
        self.backoff = BACKOFF_MIN_MS
        self.now_ms = 0            # the meter's clock in this poll (commands run in umqtt's callback)
        self.delivery = Delivery(app, outbox, telemetry_s)
        self.pid = 0
        self.started = 0
        self.last_error = ""
        self.stats = {"connects": 0, "failures": 0, "sent": 0, "rejected": 0, "commands": 0,
                      "ignored": 0}
        self.desk = Desk(app, commands, meter_id, key, self.delivery, self.stats)
        self.ota = None            # a firmware.otasync.OtaSync, once updates are in play

    # -- connection ------------------------------------------------------------

    @property
    def action(self):
        """"reboot" once a signed command asked for it, or a release is
        staged or missed its deadline (the shell does it)."""
        return "reboot" if self.ota is not None and self.ota.reboot else self.desk.action

    # -- firmware updates (firmware/otasync.py, loaded only when one is used) --

    def _ota(self):
        if self.ota is None:
            from firmware.otasync import OtaSync
            self.ota = OtaSync(self)
        return self.ota

    def updating(self):
        """A release is being fetched or unpacked: the loop turns quickly."""
        return self.ota is not None and self.ota.busy()

    def start_update(self, version):
        """`update VERSION` (signed by the head-end): fetch and stage it.
        OSError or ValueError say why not."""
        u = self._ota().updater()
        u.start(version)
        return u.progress()

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
        self.delivery.drop()

    def configure(self, host, port, user, password, tls, telemetry_s):
        """New connection settings, from `set` (no reboot): a connection
        made with the old ones is dropped and the new ones tried at once."""
        self.delivery.telemetry_ms = telemetry_s * 1000
        new = (host, port, user, password, tls)
        if new == (self.host, self.port, self.user, self.password, self.tls):
            return
        self.host, self.port, self.user, self.password, self.tls = new
        self.disconnect()
        self.addr = self.ctx = self.next_try = None
        self.backoff = BACKOFF_MIN_MS

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
        if self.tls is not None and self.ctx is None:
            from firmware.tls import context
            self.ctx = context(self.tls[0], self.tls[1])   # OSError: no plain fallback
        simple.socket.addr = self.addr
        simple.socket.tls = None if self.tls is None else (self.ctx, self.host)
        c = simple.MQTTClient(self.id, self.host, self.port, self.user, self.password,
                              keepalive=KEEPALIVE_S)
        c.set_last_will(self.base + "status", "offline", retain=True, qos=1)
        c.set_callback(self._on_message)
        self.client = c
        self.started = real_ms
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
        link.last_ping = link.last_rx = real_ms
        self.stats["connects"] += 1
        self.delivery.restart()
        self._error("", now_ms)
        if self.ota is not None:
            self.ota.sub = None     # subscribe again: a retained chunk comes to a new subscription
        # subscribed before "online": the broker takes both in order, so a
        # head-end that answers "online" with a command never races the subscription
        link.write(mqttlink.subscribe(self.base + "cmd", self.next_pid()))
        self._publish("status", "online", None, 0, retain=True)     # str: _publish compares with "{"

    def _on_message(self, topic, msg):
        # Run the command here, inside umqtt's wait_msg: it writes the PUBACK
        # only after this returns, so nothing is acknowledged before it was
        # carried out (and on flash, where it changes anything).
        if topic[:9] == b"releases/":
            if self.ota is not None:
                self.ota.take(topic, msg)
            return
        self.stats["commands"] += 1
        self._reply(self.desk.handle(msg, self.now_ms))

    # -- the loop ----------------------------------------------------------------

    def poll(self, now_ms, real_ms):
        """Do a bounded share of the sync work; never waits on the network.
        now_ms: the meter's clock; real_ms: time.ticks_ms() (it wraps)."""
        self.delivery.tick(now_ms)
        self.now_ms = now_ms
        self.desk.tick(now_ms)
        if self.ota is not None:
            try:
                self.ota.poll(now_ms)
            except OSError as e:   # the filesystem: that update stops, metering goes on
                if self.ota.update is not None:
                    self.ota.update.state = "failed"
                self.ota.event("flash " + describe(e))
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
        if not self.online:
            self._connack(link, real_ms, now_ms)
            if not self.online:
                return
        n = link.packet_len()
        if link.dropped:
            link.dropped = 0
            self._reply(self.desk.reject(None, "command too long", now_ms))
        cmds = 0
        while n and cmds < CMDS_PER_TURN:
            op = link.inp[0] & 0xF0
            if op == 0x30:
                c.check_msg()     # umqtt parses it, runs it (_on_message), then PUBACKs
                cmds += 1
            else:
                self._control(op, link.read(n))
            n = link.packet_len()
        dv = self.delivery
        while dv.room():
            m = dv.next(now_ms)
            if m is None:
                break
            self._publish(m[0], m[1], m[2], m[3])
        if len(link.out) > MAX_UNSENT:
            raise OSError("broker not reading")
        link.pump()
        link.keepalive(real_ms, KEEPALIVE_S)

    def _control(self, op, pkt):
        """An acknowledgement: PUBACK frees its message, SUBACK must grant."""
        if op == 0x40 and len(pkt) == 4:
            self.delivery.acked((pkt[2] << 8) | pkt[3])
        elif op == 0x90 and len(pkt) >= 5 and pkt[4] == 0x80:
            raise OSError("subscription refused")

    def next_pid(self):
        self.pid = self.pid % 65535 + 1
        return self.pid

    def _publish(self, topic, payload, kind, seq, retain=False):
        link = self.link
        if link is None:
            return
        pid = self.next_pid()
        if payload[:1] == "{":      # events, telemetry, replies: signed (docs/mqtt.md)
            payload = seal(self.mac, self.id, topic, payload)
        link.write(mqttlink.publish_qos1(self.base + topic, payload, pid, retain))
        self.delivery.sent(pid, kind, seq)
        self.stats["sent"] += 1

    def _reply(self, body):
        if body is not None and self.online:
            self._publish("reply", json.dumps(body), None, 0)


def link_settings(app):
    """(host, port, user, password, tls, telemetry_s) from the settings."""
    s = app.settings
    tls = (getattr(app.hal, "ca", None), s.get("mqtt_ca")) if s.get("mqtt_tls") else None
    return (s.get("mqtt_host"), s.get("mqtt_port"), s.get("mqtt_user") or None,
            s.get("mqtt_pass") or None, tls, s.get("telemetry_s"))


def from_settings(app, wifi, outbox):
    """The sync a provisioned meter runs, or None when it has no broker, id
    or key yet."""
    s = app.settings
    if not (s.get("mqtt_host") and s.get("meter_id") and s.get("hc_key")):
        return None
    from firmware.commands import Commands
    host, port, user, password, tls, tele = link_settings(app)
    sync = Sync(app, Commands(app), wifi, s.get("meter_id"), bytes.fromhex(s.get("hc_key")),
                host, port, user, password, tele, outbox, tls)
    if getattr(app.hal, "release_key", None) and _update_pending():
        sync._ota()
    return sync


def _update_pending():
    """A fetch to go on with, a trial to prove or a rollback to log
    (firmware/ota.py's files): only then is the update code loaded."""
    try:
        os.stat("ota")
        return True
    except OSError:
        pass
    try:
        with open("ota.json") as f:
            st = json.load(f)
        return bool(st.get("trial") or st.get("failed"))
    except (OSError, ValueError, AttributeError):
        return False
