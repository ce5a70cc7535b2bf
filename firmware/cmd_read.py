# The commands anyone may give (firmware/commands.py holds the table and who
# may run what): reads, the customer's token and button, and the technician
# login. Each takes (app, session, args, now_ms) and returns a Result.

import json

from firmware import tariff as tariffs
from firmware.calendar import format_iso, parse_iso
from firmware.cmdbase import ANYONE, LEVEL_NAMES, TECHNICIAN, Result, err, whole as _int
from firmware.eventlog import kind_name
from firmware.meter import wh_text
from firmware.version import VERSION

MAX_LOG = 100


def status(a, ses, args, now):
    lg = a.ledger
    st = a.status(now)
    state = a.credit_state
    return Result([
        "energy_wh=" + wh_text(lg.pulses, lg.imp),
        "power_w=%d" % st["power_w"],
        "credit=%d" % lg.credit,
        "relay=" + st["relay"],
        "relay_mode=" + a.settings.get("relay_mode"),
        "state=" + state,
        "pulses=%d" % lg.pulses,
        "billed=%d" % lg.billed,
        "topups=%d" % lg.topups,
        "vend_seq=%d" % lg.vend_hi,
        "price_per_kwh=%d" % st["price"],
        "imp_per_kwh=%d" % lg.imp,
        "relay_state=%s" % a.relay.state,
        "debt=%d" % lg.debt,
        "emergency=%d" % lg.emergency,
        "standing_total=%d" % lg.standing_total,
        "time=" + format_iso(st["wall"]),
        "clock=" + ("synced" if a.clock.synced else "unsynced"),
        "alarms=" + (",".join(a.events.alarms) or "none"),
        "pin=" + ("set" if a.auth.has_pin() else "unset"),
        "session=" + LEVEL_NAMES[ses.level],
        "uptime_s=%d" % ((now - a.boot_ms) // 1000),
        "events=%d" % a.log.seq,
    ] + ([] if a.sync is None else
         ["mqtt=" + a.sync.state(), "mqtt_error=" + (a.sync.last_error or "none"),
          "update=" + (a.sync.ota.progress() if a.sync.ota else "none")]) +
        ["fw=" + VERSION])


def energy(a, ses, args, now):
    lg = a.ledger
    return Result(["energy_wh=" + wh_text(lg.pulses, lg.imp)])


def credit(a, ses, args, now):
    return Result(["credit=%d" % a.ledger.credit])


def relay(a, ses, args, now):
    if args:
        if len(args) != 1 or args[0] not in ("open", "close", "auto", "reset"):
            return err("usage: relay [open|close|auto|reset]")
        if args[0] == "reset":
            a.reset_trip(now)
        else:
            a.supply.set_mode("closed" if args[0] == "close" else args[0], now)
    return Result(["relay=" + ("closed" if a.relay.closed else "open"),
                   "relay_state=%s" % a.relay.state,
                   "relay_mode=" + a.settings.get("relay_mode")])


def tariff(a, ses, args, now):
    if args:
        if args[0] != "set" or len(args) < 2:
            return err("usage: tariff [set JSON]")
        try:
            t = json.loads(" ".join(args[1:]))
        except ValueError:
            return err("tariff is not valid JSON")
        a.add_tariff(t, now)
    wall = a.clock.now(now)
    cur = a.tariff_now(wall)
    lines = ["price_per_kwh=%d" % a.billing.price_now(now), "active=" + json.dumps(cur)]
    for t in tariffs.pending(a.tariffs(), wall):
        lines.append("pending=" + json.dumps(t))
    return Result(lines)


def time(a, ses, args, now):
    if args:
        if args[0] != "set" or len(args) != 2:
            return err("usage: time [set ISO-TIME]")
        a.sync_clock(parse_iso(args[1]), now)
    wall = a.clock.now(now)
    return Result(["time=" + format_iso(wall), "local=" + format_iso(a.local(wall)),
                   "clock=" + ("synced" if a.clock.synced else "unsynced")])


def token(a, ses, args, now):
    if not args:
        return err("usage: token DIGITS (groups separated by spaces or dashes are fine)")
    kind, credit = a.enter_token("".join(args), now)
    lg = a.ledger
    return Result(["token=" + kind, "value=%d" % credit, "credit=%d" % lg.credit,
                   "payg=" + ("off" if lg.payg_off else "on")])


def button(a, ses, args, now):
    what = a.button(now)
    if what is None:
        return err("the button has nothing to do now (relay %s)" % a.relay.state)
    if what == "hold-off":
        return err("the trip is in its hold-off; press again later")
    return Result(["relay_state=" + a.relay.state, "relay=" +
                   ("closed" if a.relay.closed else "open")])


def emergency(a, ses, args, now):
    credit = a.take_emergency(now)
    return Result(["credit=%d" % credit, "emergency=%d" % a.ledger.emergency])


def config(a, ses, args, now):
    from firmware.schema import CONFIG_KEYS, SECRETS     # transient: only config reads it
    lines = ["imp_per_kwh=%d" % a.ledger.imp]
    for k in CONFIG_KEYS:
        v = a.settings.get(k)
        if k in SECRETS and v:
            v = "***"
        lines.append("%s=%s" % (k, v))
    lines.append("relay_mode=" + a.settings.get("relay_mode"))
    lines.append("pin=" + ("set" if a.auth.has_pin() else "unset"))
    return Result(lines)


def log(a, ses, args, now):
    if len(args) > 1:
        return err("usage: log [N]")
    n = _int(args[0], "N", 1, MAX_LOG) if args else 10
    return Result(["seq=%d t=%d kind=%s value=%d detail=%s"
                   % (e[0], e[1], kind_name(e[2]), e[3], e[4])
                   for e in a.log.last(n)])


def alarms(a, ses, args, now):
    return Result(["alarms=" + (",".join(a.events.alarms) or "none")])


def login(a, ses, args, now):
    if len(args) != 1:
        return err("usage: login PIN")
    why = a.auth.check(args[0], now)
    if why is not None:
        ses.level = ANYONE   # a failed login ends any session on this line
        kind = "lockout" if "locked" in why else "login_failed"
        a.emit({"event": kind, "value": a.auth.failures()}, now)
        if kind == "lockout":
            a.alarm("lockout", now)
        return err(why)
    ses.level = TECHNICIAN
    a.emit({"event": "login"}, now)
    return Result(["session=technician"])


def logout(a, ses, args, now):
    if ses.level >= TECHNICIAN:
        a.emit({"event": "logout", "detail": "user"}, now)
    ses.level = ANYONE
    return Result(["session=anyone"])
