#!/usr/bin/env python3
"""meterctl: the head-end operator's tool (MQTT, paho-mqtt).

    meterctl provision [--id ID] [--out FILE] [--pin PIN]   create a meter id and key
    meterctl topup METER AMOUNT [--ref REF] [--wait S]      a vend: journalled, signed, sent
    meterctl vends [METER] [--status STATUS]                the vending journal
    meterctl vend REF [--resend | --cancel] [--wait S]      one vend's fate; send it again;
                                                            or cancel it (signed, confirmed)
    meterctl read METER                                     the meter's status
    meterctl watch [METER]                                  stream telemetry and events
    meterctl relay METER open|close|auto|reset
    meterctl tariff METER FILE.json
    meterctl config METER KEY VALUE
    meterctl resend METER SEQ                               publish events again from SEQ
    meterctl token METER VALUE [--type add|set|disable|sync] [--extended]
                                                            an OpenPAYGO token, offline
    meterctl release-key FILE                               a new release key (RSA-3072)
    meterctl release VERSION --key FILE                     build and sign a firmware release
    meterctl update (METER | --all) VERSION                 publish it; the meters fetch it

Every command that changes money, relay or configuration is signed with the
meter's key (HMAC-SHA256) and carries a counter above every earlier one. The
head-end registry (keys, counters, delivered event numbers) is a JSON file,
build/headend.json by default; the vending journal (SQLite) is vends.sqlite beside
it, or --journal / $METERCTL_JOURNAL. Exit code: 0 when the meter answered ok (a
vend: it is applied), 1 on an error reply or a timeout (a vend: still pending, or
refused, or cancelled), 2 for a usage error. Topics and payloads: docs/mqtt.md;
vends: docs/vending.md."""

import argparse
import json
import os
import queue
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mp  # noqa: E402

mqtt = mp.need("paho.mqtt.client", "meterctl")

sys.path.insert(0, str(mp.ROOT))
from firmware.ota import version_tuple  # noqa: E402
from headend import protocol  # noqa: E402
from headend.broker import client as mqtt_client, host_port, nodelay  # noqa: E402
from headend.journal import Journal, JournalError, vend_command  # noqa: E402
from headend.protocol import Forged  # noqa: E402
import brokerauth  # noqa: E402
import release  # noqa: E402

DEFAULT_REGISTRY = mp.ROOT / "build" / "headend.json"
REPLY_TIMEOUT_S = 20


class Registry:
    """The head-end's record of its meters: key, last counter, last event seq."""

    def __init__(self, path):
        self.path = Path(path)
        try:
            self.data = json.loads(self.path.read_text())
        except FileNotFoundError:
            self.data = {"meters": {}}

    def save(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, sort_keys=True))
        os.replace(tmp, self.path)      # a crash leaves the old file or the new

    def meter(self, mid):
        m = self.data["meters"].get(mid)
        if m is None:
            raise SystemExit("meterctl: unknown meter %r (provision it first)" % mid)
        return m

    def next_ctr(self, mid):
        m = self.meter(mid)
        m["ctr"] = protocol.next_ctr(m.get("ctr", 0))
        self.save()
        return m["ctr"]


# The head-end's MQTT login, once `provision --broker-dir` made one, and its
# TLS files (--ca, --cert, --key) (main()).
LOGIN = {}
TLS = {}


def connect(broker, client_id=None, clean=True):
    c = mqtt_client(client_id or "meterctl-" + uuid.uuid4().hex[:8], clean, LOGIN, TLS)
    c.connect(broker[0], broker[1], keepalive=10)
    nodelay(c)
    return c


def signed(reg, mid, cmd, args):
    return protocol.command(reg.meter(mid)["key"], mid, reg.next_ctr(mid), cmd, args)


def opened(reg, mid, topic, payload):
    """A meter's message, once its seal checks (protocol.opened). Nothing a
    meter did not sign reaches the journal, the registry or an operator as fact."""
    m = reg.data["meters"].get(mid)
    return protocol.opened(m and m["key"], mid, topic, payload)


def call(broker, reg, mid, payload, timeout=REPLY_TIMEOUT_S):
    """Publish a command to the meter and wait for its signed reply."""
    got = {"forged": 0}
    done = threading.Event()

    def on_message(client, userdata, msg):
        try:
            r = opened(reg, mid, "reply", msg.payload)
        except Forged:
            got["forged"] += 1
            return
        if r.get("ctr") == payload["ctr"]:
            got["reply"] = r
            done.set()

    subscribed, accepted = threading.Event(), threading.Event()
    c = connect(broker)
    c.on_message = on_message
    c.on_subscribe = lambda *a: subscribed.set()
    c.on_connect = lambda cl, u, f, rc, p=None: rc.is_failure or accepted.set()
    c.subscribe("meters/%s/reply" % mid, qos=1)
    c.loop_start()
    try:
        if not accepted.wait(5):
            # e.g. plain MQTT to a TLS listener: say so now, not after the reply timeout
            print("meterctl: the broker at %s:%d did not accept the connection"
                  % broker, file=sys.stderr)
            return None
        subscribed.wait(5)
        c.publish("meters/%s/cmd" % mid, json.dumps(payload), qos=1)
        if not done.wait(timeout):
            if got["forged"]:
                print("meterctl: %d message(s) on %s's reply topic failed the meter's "
                      "signature and were ignored" % (got["forged"], mid), file=sys.stderr)
            return None
        return got["reply"]
    finally:
        c.loop_stop()
        c.disconnect()


JOURNAL_CLIENT = "meterctl-journal"


class VendSession:
    """The head-end's persistent MQTT session for vends: subscribed to every
    meter's replies and events, so an outcome that comes while no meterctl runs
    waits at the broker, and the journal learns it next time."""

    def __init__(self, broker, journal, reg):
        self.j = journal
        self.reg = reg
        self.q = queue.Queue()
        self.replies = {}
        subscribed = threading.Event()
        c = connect(broker, JOURNAL_CLIENT, clean=False)
        c.on_message = lambda cl, u, m: self.q.put((m.topic, m.payload))
        c.on_subscribe = lambda *a: subscribed.set()
        c.subscribe([("meters/+/reply", 1), ("meters/+/events", 1)])
        c.loop_start()
        subscribed.wait(5)
        self.c = c

    def _take(self, timeout):
        """Handle one message (in this thread: the journal is not shared)."""
        try:
            topic, payload = self.q.get(timeout=timeout)
        except queue.Empty:
            return False
        parts = topic.split("/")
        if len(parts) != 3:
            return True
        try:
            body = opened(self.reg, parts[1], parts[2], payload)
        except Forged:
            return True           # never a fact about a vend
        if parts[2] == "reply":
            self.replies[(parts[1], body.get("ctr"))] = body
            self.j.reply(parts[1], body)
        elif parts[2] == "events":
            self.j.event(parts[1], body)
        return True

    def settle(self, quiet=0.5, most=5.0):
        """Take what the broker kept, until it is quiet."""
        end = time.time() + most
        while time.time() < end and self._take(quiet):
            pass

    def send(self, mid, payload, ref, cmd):
        self.j.sent(mid, payload["ctr"], ref, cmd)      # before it can be answered
        self.c.publish("meters/%s/cmd" % mid, json.dumps(payload), qos=1).wait_for_publish(5)

    def wait_outcome(self, mid, ctr, ref, timeout):
        """The reply to ctr, once the vend's fate is known (the meter's event
        decides it, docs/vending.md), an error reply came, or time is up."""
        end = time.time() + timeout
        while time.time() < end:
            reply = self.replies.get((mid, ctr))
            if self.j.get(ref)["status"] != "pending" or (reply and not reply.get("ok")):
                break
            self._take(min(0.2, max(0.01, end - time.time())))
        self.settle(0.3, 2.0)       # the events that came with it
        return self.replies.get((mid, ctr))

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


def vend_line(v):
    return "ref=%s meter=%s amount=%d status=%s%s%s" % (
        v["ref"], v["meter"], v["amount"], v["status"],
        (" vend_seq=%d" % v["vseq"]) if v["vseq"] else "",
        (" detail=" + json.dumps(v["detail"])) if v["detail"] else "")


def send_vend(a, reg, j, row, cmd):
    """Send a vend (again) or its cancel, and say where it stands."""
    mid, ref = row["meter"], row["ref"]
    try:
        ses = VendSession(a.broker, j, reg)
    except OSError as e:
        print("error: cannot reach the broker at %s:%d (%s): vend %s is %s, not sent now"
              % (a.broker[0], a.broker[1], e.strerror or e, ref, row["status"]))
        return 1
    try:
        ses.settle()
        row = j.get(ref)
        if row["status"] == "pending":
            payload = signed(reg, mid, *vend_command(row, cmd))
            ses.send(mid, payload, ref, cmd)
            reply = ses.wait_outcome(mid, payload["ctr"], ref, a.wait)
            row = j.get(ref)
            if reply is not None and row["status"] != "pending":
                for line in reply.get("lines", []):
                    print(line)
    finally:
        ses.close()
    return vend_outcome(row, "cancelled" if cmd == "cancel" else "applied")


def vend_outcome(row, wanted="applied"):
    print(vend_line(row))
    st = row["status"]
    if st == wanted:
        print("ok")
        return 0
    if st == "pending":
        print("error: no answer from the meter yet: vend %s is pending; the meter credits "
              "it once when it gets it (`meterctl vend %s` shows its fate, `--resend` sends "
              "it again)" % (row["ref"], row["ref"]))
    else:
        print("error: vend %s %s%s" % (row["ref"], st,
                                       (": " + row["detail"]) if row["detail"] else ""))
    return 1


def cmd_vends(a, reg, j):
    try:
        ses = VendSession(a.broker, j, reg)
    except OSError as e:
        print("meterctl: broker %s:%d unreachable (%s): the journal as last known"
              % (a.broker[0], a.broker[1], e.strerror or e), file=sys.stderr)
    else:
        try:
            ses.settle()
        finally:
            ses.close()
    if a.what == "vends":
        for v in j.list(a.meter, a.status):
            print(vend_line(v))
        return 0
    row = j.get(a.ref)
    if row is None:
        raise SystemExit("meterctl: no vend %r in %s" % (a.ref, j.path))
    if a.resend or a.cancel:
        reg.meter(row["meter"])
        return send_vend(a, reg, j, row, "cancel" if a.cancel else "topup")
    return vend_outcome(row)


def show(reply):
    if reply is None:
        print("error: no reply from the meter", file=sys.stderr)
        return 1
    for line in reply.get("lines", []):
        print(line)
    if reply.get("ok"):
        print("ok")
        return 0
    print("error: %s" % reply.get("error"))
    return 1


def cmd_provision(a, reg):
    mids = reg.data["meters"]
    mid = a.id
    if mid is not None:
        try:
            protocol.check_meter_id(mid)
        except ValueError as e:
            raise UsageError("--id: %s" % e)
    if a.pin is not None and not (a.pin.isdigit() and 4 <= len(a.pin) <= 12):
        raise UsageError("--pin: 4 to 12 digits")
    if not mid:
        n = 1
        while "sim-%04d" % n in mids:
            n += 1
        mid = "sim-%04d" % n
    if mid in mids and not a.force:
        raise SystemExit("meterctl: %s is provisioned already (--force to replace)" % mid)
    user, password = a.mqtt_user or "", a.mqtt_pass or ""
    if a.broker_dir:            # the broker gets this meter's login and topics
        user, password = user or mid, password or brokerauth.new_password()
        taken = {m.get("mqtt_user") for k, m in mids.items() if k != mid}
        if user in taken or user == brokerauth.HEADEND_USER:
            raise UsageError("--mqtt-user %r is another's login on this broker" % user)
    secrets = protocol.new_secrets(mid, a.pin, user, password, a.restricted)
    if a.release_key:            # the meter takes releases this key signed
        try:
            secrets["release_key"] = release.modulus(a.release_key).hex()
        except (OSError, ValueError) as e:
            raise UsageError("--release-key: %s" % e)
    if a.ca:                     # the meter pins the CA meterctl trusts
        secrets["mqtt_ca"], secrets["mqtt_tls"] = Path(a.ca).read_text(), 1
    mids[mid] = {"key": secrets["key"], "ctr": 0, "seen": 0,
                 "token_key": secrets["token_key"], "token_start": secrets["token_start"],
                 "token_restricted": secrets["token_restricted"], "token_count": 0}
    if a.broker_dir:
        mids[mid].update(mqtt_user=user, mqtt_hash=brokerauth.password_hash(password))
        brokerauth.headend(reg.data)
    reg.save()
    if a.broker_dir:
        print("broker_files=%s" % " ".join(map(str, brokerauth.write(reg.data, a.broker_dir))))
    out = Path(a.out or (mp.ROOT / "build" / ("%s.secrets.json" % mid)))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(secrets, indent=1))
    os.chmod(out, 0o600)
    print("meter_id=%s" % mid)
    print("secrets=%s" % out)
    return 0


def cmd_release(p, a, reg):
    """Firmware releases (docs/ota.md)."""
    if a.what == "release-key":
        try:
            release.new_key(a.file)
        except FileExistsError:
            p.error("%s exists: a release key is never overwritten" % a.file)
        print("release_key=%s" % a.file)
        return 0
    try:
        version_tuple(a.version)
    except ValueError as e:
        p.error("VERSION: %s, got %r" % (e, a.version))
    folder = Path(getattr(a, "out", None) or getattr(a, "release", None)
                  or mp.ROOT / "build" / "releases" / a.version)
    if a.what == "release":
        try:
            release.make(a.version, a.release_key, folder)
        except (OSError, ValueError) as e:
            p.error("--key: %s" % e)
        print("release=%s" % folder)
        return 0
    mids = sorted(reg.data["meters"]) if a.all else [a.meter]
    if not mids or mids == [None] or (a.all and a.meter):
        p.error("update: a METER or --all")
    for mid in mids:
        reg.meter(mid)
    try:
        head, parts = (folder / "head").read_bytes(), release.chunks(folder)
    except OSError as e:
        p.error("no release %s (meterctl release builds it): %s" % (a.version, e))
    # retained, so that each meter fetches it when it can, as often as it must
    c = connect(a.broker)
    c.loop_start()
    try:
        base = "releases/%s/" % a.version
        for topic, payload in [(base + "head", head)] + \
                [(base + str(i), b) for i, b in enumerate(parts)]:
            c.publish(topic, payload, qos=1, retain=True).wait_for_publish(30)
    finally:
        c.loop_stop()
        c.disconnect()
    print("published=%s chunks=%d" % (a.version, len(parts)))
    rc = 0
    for mid in mids:
        r = call(a.broker, reg, mid, signed(reg, mid, "update", [a.version]))
        print("%s: %s" % (mid, "no reply" if r is None else
                          " ".join(r.get("lines", [])) or r.get("error", "")))
        rc |= 0 if r and r.get("ok") else 1
    return rc


def cmd_watch(a, reg):
    """Print telemetry and events as they come. Events are de-duplicated by
    their sequence number; a gap is reported and, for a meter in the registry,
    asked for again with a signed `resend` (a broker that crashed may have
    lost events it had already acknowledged to the meter)."""
    seen = {}           # meter -> set of event seqs printed this run
    top = {mid: m.get("seen", 0) for mid, m in reg.data["meters"].items()}
    asked = {}          # meter -> first seq asked for again

    def on_message(client, userdata, msg):
        try:
            see(client, msg)
        except Exception as e:     # one odd message must never stop the watch
            print(json.dumps({"topic": msg.topic, "error": "%s: %s" % (type(e).__name__, e)}),
                  flush=True)

    def see(client, msg):
        parts = msg.topic.split("/")
        if len(parts) != 3:
            return
        mid, kind = parts[1], parts[2]
        if kind in ("status", "cmd"):     # not the meter's signed word: shown as text
            print(json.dumps({"meter": mid, "topic": kind,
                              "msg": msg.payload.decode(errors="replace")}), flush=True)
            return
        try:
            body = opened(reg, mid, kind, msg.payload)
        except Forged as e:
            print(json.dumps({"meter": mid, "topic": kind, "rejected": str(e)}), flush=True)
            return
        if kind == "events":
            seq = body.get("seq")
            if not isinstance(seq, int) or seq < 1:
                raise ValueError("event without a sequence number")
            got = seen.setdefault(mid, set())
            if seq in got or (not got and seq <= top.get(mid, 0)):
                return                        # a redelivery: already have it
            last = max(got) if got else top.get(mid, 0)
            got.add(seq)
            if seq > last + 1:
                # also the first event ever seen from a meter, if it is not 1:
                # reported, not asked for (an earlier head-end may have them)
                print(json.dumps({"meter": mid, "gap": [last + 1, seq - 1]}), flush=True)
                if last and asked.get(mid) != last + 1:
                    asked[mid] = last + 1
                    client.publish("meters/%s/cmd" % mid, json.dumps(
                        signed(reg, mid, "resend", [str(last + 1)])), qos=1)
            if mid in reg.data["meters"] and seq > reg.data["meters"][mid].get("seen", 0):
                reg.data["meters"][mid]["seen"] = seq
                reg.save()
        print(json.dumps({"meter": mid, "topic": kind, "msg": body}), flush=True)

    c = connect(a.broker, "meterctl-watch" if a.persistent else None,
                clean=not a.persistent)
    c.on_message = on_message
    topic = "meters/%s/#" % (a.meter or "+")
    accepted = []

    def on_connect(cl, u, f, rc, p=None):
        accepted.append(not rc.is_failure)
        cl.subscribe(topic, qos=1)
    c.on_connect = on_connect
    c.subscribe(topic, qos=1)
    c.reconnect_delay_set(0.2, 2)
    end = time.time() + a.seconds if a.seconds else None
    c.loop_start()
    try:
        while end is None or time.time() < end:
            time.sleep(0.1)
    except KeyboardInterrupt:
        pass
    finally:
        c.loop_stop()
        c.disconnect()
    if not any(accepted):
        # e.g. a TLS broker that wants a client certificate drops the
        # connection only after the handshake: say so, not a quiet watch
        print("meterctl: the broker at %s:%d never accepted the connection"
              % a.broker, file=sys.stderr)
        return 1
    return 0


def cmd_token(a, reg):
    """Generate an OpenPAYGO token with the reference library."""
    m = reg.meter(a.meter)
    if "token_key" not in m:
        raise SystemExit("meterctl: %s was provisioned without a token key; provision it "
                         "again (--force) and give the meter the new secrets" % a.meter)
    try:
        m["token_count"], digits = protocol.token(
            m["token_key"], m["token_start"], m.get("token_restricted"),
            m.get("token_count", 0), a.type, a.value, a.extended)
    except ValueError as e:
        if "must be" in str(e):
            raise UsageError(str(e))
        raise SystemExit("meterctl: %s" % e)
    reg.save()
    print(digits)
    return 0


class UsageError(Exception):
    pass


def main(argv=None):
    p = argparse.ArgumentParser(prog="meterctl", description="Head-end operator tool.")
    p.add_argument("--broker", type=host_port, default=("127.0.0.1", 1883),
                   metavar="HOST:PORT")
    p.add_argument("--registry", default=str(DEFAULT_REGISTRY), metavar="FILE")
    p.add_argument("--ca", metavar="PEM", help="MQTT over TLS: the broker's CA certificate "
                   "(`provision` gives it to the meter too)")
    p.add_argument("--cert", dest="tls_cert", metavar="PEM", help="client certificate, for a broker that "
                   "wants one (with --key)")
    p.add_argument("--key", dest="tls_key", metavar="PEM",
                   help="the client certificate's private key")
    sub = p.add_subparsers(dest="what", required=True)
    pr = sub.add_parser("provision", help="create a meter id and key, write its secrets")
    pr.add_argument("--id")
    pr.add_argument("--out", metavar="FILE")
    pr.add_argument("--pin")
    pr.add_argument("--mqtt-user")
    pr.add_argument("--mqtt-pass")
    pr.add_argument("--force", action="store_true")
    pr.add_argument("--broker-dir", metavar="DIR",
                    help="write the broker's side too: DIR/passwd and DIR/acl for Mosquitto "
                         "(password_file, acl_file), every provisioned meter allowed only its "
                         "own topics and the head-end user only its own; the meter's login "
                         "is its id and a new password unless --mqtt-user/--mqtt-pass")
    p.add_argument("--journal", metavar="FILE",
                   help="the vending journal (default $METERCTL_JOURNAL, else vends.sqlite "
                        "beside the registry)")
    t = sub.add_parser("topup", help="a vend: journalled, then a signed top-up")
    t.add_argument("meter")
    t.add_argument("amount", type=int)
    t.add_argument("--ref", help="the vend's reference (1-16 characters); an existing "
                                 "one sends that vend again")
    t.add_argument("--wait", type=float, default=REPLY_TIMEOUT_S, metavar="S",
                   help="seconds to wait for the meter (default %d)" % REPLY_TIMEOUT_S)
    vs = sub.add_parser("vends", help="the vending journal")
    vs.add_argument("meter", nargs="?")
    vs.add_argument("--status", choices=["pending", "applied", "refused", "cancelled"])
    v1 = sub.add_parser("vend", help="one vend's fate; --resend, --cancel")
    v1.add_argument("ref")
    g = v1.add_mutually_exclusive_group()
    g.add_argument("--resend", action="store_true", help="send a pending vend again")
    g.add_argument("--cancel", action="store_true",
                   help="ask the meter to make sure it never credits this vend")
    v1.add_argument("--wait", type=float, default=REPLY_TIMEOUT_S, metavar="S")
    r = sub.add_parser("read", help="the meter's status")
    r.add_argument("meter")
    w = sub.add_parser("watch", help="stream telemetry and events")
    w.add_argument("meter", nargs="?")
    w.add_argument("--seconds", type=float, help="stop after this long")
    w.add_argument("--persistent", action="store_true",
                   help="a persistent session (client id meterctl-watch): the broker "
                        "keeps what arrives while watch is away")
    rl = sub.add_parser("relay", help="signed relay command")
    rl.add_argument("meter")
    rl.add_argument("action", choices=["open", "close", "auto", "reset"])
    tf = sub.add_parser("tariff", help="install a tariff (signed)")
    tf.add_argument("meter")
    tf.add_argument("file")
    cf = sub.add_parser("config", help="change a setting (signed)")
    cf.add_argument("meter")
    cf.add_argument("key")
    cf.add_argument("value")
    tk = sub.add_parser("token", help="an OpenPAYGO token for the meter (offline top-up)")
    tk.add_argument("meter")
    tk.add_argument("value", type=int, nargs="?", default=0,
                    help="token value (0..995; extended 0..999999)")
    tk.add_argument("--type", choices=["add", "set", "disable", "sync"], default="add")
    tk.add_argument("--extended", action="store_true", help="a 12-digit token")
    pr.add_argument("--restricted", action="store_true",
                    help="tokens in digits 1-4 (a 4-key keypad)")
    rk = sub.add_parser("release-key", help="make a new release key (RSA-3072, private)")
    rk.add_argument("file")
    rb = sub.add_parser("release", help="build and sign a firmware release")
    rb.add_argument("version")
    rb.add_argument("--key", dest="release_key", required=True, metavar="FILE")
    rb.add_argument("--out", metavar="DIR", help="default build/releases/VERSION")
    up = sub.add_parser("update", help="publish a release (retained) and offer it to meters")
    up.add_argument("meter", nargs="?")
    up.add_argument("version")
    up.add_argument("--all", action="store_true", help="every meter in the registry")
    up.add_argument("--release", metavar="DIR", help="default build/releases/VERSION")
    pr.add_argument("--release-key", metavar="FILE",
                    help="the release key (its public half goes to the meter)")
    rs = sub.add_parser("resend", help="ask the meter to publish its events again from SEQ")
    rs.add_argument("meter")
    rs.add_argument("seq", type=int)
    a = p.parse_args(argv)
    reg = Registry(a.registry)
    LOGIN.update(reg.data.get("headend") or {})
    if (a.tls_cert or a.tls_key) and not (a.tls_cert and a.tls_key and a.ca):
        p.error("--cert and --key go together, with --ca")
    if a.ca:
        try:
            from firmware.tls import der
            der(Path(a.ca).read_text())
        except (OSError, ValueError) as e:
            p.error("--ca %s: %s" % (a.ca, e))
        TLS.update(ca=a.ca, cert=a.tls_cert, key=a.tls_key)
    try:
        return dispatch(p, a, reg)
    except UsageError as e:
        p.error(str(e))
    except OSError as e:
        raise SystemExit("meterctl: cannot reach the broker at %s:%d (%s)"
                         % (a.broker[0], a.broker[1], e.strerror or e))


def dispatch(p, a, reg):
    if a.what == "provision":
        return cmd_provision(a, reg)
    if a.what in ("release-key", "release", "update"):
        return cmd_release(p, a, reg)
    if a.what == "watch":
        return cmd_watch(a, reg)
    if a.what == "read":
        reg.meter(a.meter)
        return show(call(a.broker, reg, a.meter, {"ctr": 0, "cmd": "status", "args": []}))
    if a.what in ("topup", "vends", "vend"):
        path = a.journal or os.environ.get("METERCTL_JOURNAL") or \
            str(Path(a.registry).resolve().parent / "vends.sqlite")
        try:
            j = Journal(path)
            if a.what != "topup":
                return cmd_vends(a, reg, j)
            if not 0 < a.amount <= 0xFFFFFFFF:
                p.error("AMOUNT must be 1..4294967295 minor units")
            reg.meter(a.meter)
            row = j.vend(a.meter, a.amount, a.ref)
        except JournalError as e:
            p.error(str(e))
        print("ref=%s" % row["ref"])
        if row["status"] != "pending":
            return vend_outcome(row)
        return send_vend(a, reg, j, row, "topup")
    if a.what == "token":
        return cmd_token(a, reg)
    if a.what == "resend":
        if a.seq < 1:
            p.error("SEQ must be 1 or more")
        return show(call(a.broker, reg, a.meter, signed(reg, a.meter, "resend", [str(a.seq)])))
    if a.what == "relay":
        return show(call(a.broker, reg, a.meter, signed(reg, a.meter, "relay", [a.action])))
    if a.what == "tariff":
        try:
            body = json.dumps(json.loads(Path(a.file).read_text()))
        except (OSError, ValueError) as e:
            p.error("tariff file: %s" % e)
        return show(call(a.broker, reg, a.meter, signed(reg, a.meter, "tariff", ["set", body])))
    return show(call(a.broker, reg, a.meter, signed(reg, a.meter, "set", [a.key, a.value])))


if __name__ == "__main__":
    sys.exit(main())
