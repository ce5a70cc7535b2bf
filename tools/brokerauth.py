"""The broker's side of provisioning (`meterctl provision --broker-dir DIR`): a
Mosquitto password file and ACL file made from the head-end registry, so that
each meter's MQTT user may publish and subscribe only its own topics
(docs/mqtt.md) and the head-end user only what a head-end does.

DIR/passwd lines are what Mosquitto 2's mosquitto_passwd writes:
`user:$7$ITERATIONS$base64(salt)$base64(PBKDF2-HMAC-SHA512(password, salt))`.
The registry keeps each meter's user and that line, never its password (that
goes to the meter's secrets file only); the head-end's own password is kept,
since meterctl logs in with it."""

import base64
import hashlib
import os
import secrets
from pathlib import Path

ITERATIONS = 101          # mosquitto_passwd's default
SALT_LEN = 12
HEADEND_USER = "headend"
METER_WRITES = ("status", "events", "telemetry", "reply")   # status: also its last will
METER_READS = ("cmd",)


def password_hash(password, salt=None):
    salt = os.urandom(SALT_LEN) if salt is None else salt
    dk = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, ITERATIONS)
    return "$7$%d$%s$%s" % (ITERATIONS, base64.b64encode(salt).decode(),
                            base64.b64encode(dk).decode())


def new_password():
    return secrets.token_urlsafe(18)


def headend(data):
    """The head-end's MQTT login, made the first time the registry needs one."""
    h = data.get("headend")
    if h is None:
        pw = new_password()
        h = data["headend"] = {"mqtt_user": HEADEND_USER, "mqtt_pass": pw,
                               "mqtt_hash": password_hash(pw)}
    return h


def passwd_text(data):
    users = [(headend(data)["mqtt_user"], data["headend"]["mqtt_hash"])]
    users += [(m["mqtt_user"], m["mqtt_hash"]) for _, m in sorted(data["meters"].items())
              if m.get("mqtt_hash")]
    return "".join("%s:%s\n" % u for u in users)


def acl_text(data):
    """Mosquitto ACL: nothing is allowed but what is listed under a user."""
    out = ["# made by meterctl provision from the head-end registry; do not edit",
           "user %s" % headend(data)["mqtt_user"]]
    out += ["topic read meters/+/%s" % t for t in METER_WRITES]
    out += ["topic write meters/+/%s" % t for t in METER_READS]
    out += ["topic write releases/#"]          # firmware releases (meterctl update)
    for mid, m in sorted(data["meters"].items()):
        if not m.get("mqtt_hash"):
            continue
        out += ["", "user %s" % m["mqtt_user"]]
        out += ["topic write meters/%s/%s" % (mid, t) for t in METER_WRITES]
        out += ["topic read meters/%s/%s" % (mid, t) for t in METER_READS]
        out += ["topic read releases/#"]
    return "\n".join(out) + "\n"


def write(data, out_dir):
    """DIR/passwd and DIR/acl, each replaced whole (a reader never sees half
    a file); reload Mosquitto (SIGHUP) to apply them."""
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in (("passwd", passwd_text(data)), ("acl", acl_text(data))):
        tmp = d / (name + ".tmp")
        tmp.write_text(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, d / name)
        paths.append(d / name)
    return paths
