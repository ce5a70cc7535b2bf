# The technician's and head-end's commands (firmware/commands.py holds the
# table and who may run what). Each takes (app, session, args, now_ms) and
# returns a Result; one that fails changes nothing.

import os

from firmware.auth import valid_pin
from firmware.cmdbase import ANYONE, HEADEND, Result, err, whole as _int

CONFIRM_MS = 60000


def topup(a, ses, args, now):
    if len(args) not in (2, 3):
        return err("usage: topup AMOUNT REF [VEND_SEQ]")
    amount = _int(args[0], "AMOUNT", 1, 0xFFFFFFFF)
    vseq = _int(args[2], "VEND_SEQ", 1, 0xFFFFFFFF) if len(args) == 3 else None
    credit = a.topup(args[1], amount, now, vseq)
    return Result(["credit=%d" % credit])


def cancel(a, ses, args, now):
    if len(args) not in (1, 2):
        return err("usage: cancel REF [VEND_SEQ]")
    vseq = _int(args[1], "VEND_SEQ", 1, 0xFFFFFFFF) if len(args) == 2 else None
    a.cancel_vend(args[0], now, vseq)
    return Result(["cancelled=" + args[0]])


def setting(a, ses, args, now):
    if len(args) != 2:
        return err("usage: set KEY VALUE")
    key, text = args[0].lower(), args[1]
    if key == "pin":
        if not valid_pin(text):
            return err("PIN must be 4 to 12 digits")
        a.auth.set_pin(text)
        a.emit({"event": "config", "detail": "pin"}, now)
        return Result(["pin=set"])
    if key == "imp_per_kwh":
        a.billing.set_meter_constant(_int(text, key, 100, 100000), now)
        return Result(["imp_per_kwh=%d" % a.ledger.imp])
    if key == "debt":
        a.ledger.set_debt(_int(text, key, 0, 10 ** 12))
        a.emit({"event": "config", "detail": "debt", "value": a.ledger.debt}, now)
        return Result(["debt=%d" % a.ledger.debt])
    from firmware.schema import SECRETS, parse     # transient: only `set` reads it
    value = parse(key, text)
    a.settings.save({key: value})
    a.emit({"event": "config", "detail": key}, now)
    a.refresh(now)      # WiFi and MQTT settings too, at once (app.network_settings)
    out = ["%s=%s" % (key, "***" if key in SECRETS else value)]
    if key[:5] == "mqtt_" and a.sync is None:
        out.append("reboot=needed")     # the MQTT stack starts at boot, once provisioned
    return Result(out)


def clear(a, ses, args, now):
    return Result(["cleared=" + a.events.clear_alarms(now)])


def selftest(a, ses, args, now):
    lines, failed = [], []

    def check(name, fn):
        try:
            why = fn()
        except Exception as e:  # a self-test reports, it does not crash
            why = repr(e)
        lines.append("%s=%s" % (name, "ok" if why is None else "FAIL " + why))
        if why is not None:
            failed.append(name)

    check("ledger", a.verify_ledger)
    check("settings", a.verify_settings)
    check("event_log", lambda: None if a.log.last(1) or a.log.seq == 0
          else "log unreadable")
    check("relay", lambda: None if a.relay.closed == a.hal.relay.closed
          else "relay output disagrees with controller")
    a.emit({"event": "selftest", "value": 0 if failed else 1,
            "detail": ",".join(failed)}, now)
    if failed:
        return Result(lines, error="self-test failed: " + ",".join(failed))
    return Result(lines)


def update(a, ses, args, now):
    if len(args) != 1:
        return err("usage: update VERSION")
    if a.sync is None or not getattr(a.hal, "release_key", None):
        return err("no firmware updates here: a board takes them over its MQTT link")
    from firmware.mqttlink import describe     # loaded with the sync already
    try:
        return Result(["update=" + a.sync.start_update(args[0])])
    except OSError as e:
        return err(describe(e))


def reboot(a, ses, args, now):
    a.ledger.flush()
    a.emit({"event": "reboot"}, now)
    return Result(["rebooting"], action="reboot")


def factory_reset(a, ses, args, now):
    """Two steps: without a code, a code is issued; the same command with
    that code within a minute resets. Credit and energy are kept: they
    are the tenant's, not configuration."""
    if not args:
        code = "%04d" % (int.from_bytes(os.urandom(2), "little") % 10000)
        ses.confirm = (code, now + CONFIRM_MS)
        return Result(["confirm within 60 s with: factory-reset " + code])
    pending, ses.confirm = ses.confirm, None
    if pending is None or now > pending[1] or args[0] != pending[0]:
        return err("wrong or expired confirmation code; nothing reset")
    a.factory_reset(now)
    ses.level = ANYONE
    return Result(["settings reset; PIN removed; credit and energy kept"])


def repl(a, ses, args, now):
    if ses.level == HEADEND:
        return err("the REPL is only for a technician at the meter")
    a.ledger.flush()
    a.emit({"event": "repl"}, now)
    return Result(["leaving to the REPL"], action="repl")
