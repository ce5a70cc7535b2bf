# The one command layer. The console, MQTT and tokens all call run(); each
# command has one authorisation rule and returns a Result: lines of text and
# either ok or an error message. A command that fails changes nothing.

import json
import os

from firmware import tariff
from firmware.schema import CONFIG_KEYS, SECRETS, whole as _int
from firmware.schema import parse as parse_setting
from firmware.calendar import format_iso, parse_iso
from firmware.auth import valid_pin
from firmware.eventlog import kind_name
from firmware.ledger import Rejected
from firmware.meter import wh_text

ANYONE, TECHNICIAN, HEADEND = 0, 1, 2
LEVEL_NAMES = ("anyone", "technician", "head-end")
MAX_LOG = 100
CONFIRM_MS = 60000


class Result:
    def __init__(self, lines=(), error=None, action=None):
        self.lines = list(lines)
        self.error = error      # None: ok
        self.action = action    # "reboot" or "repl": for the shell to carry out

    @property
    def ok(self):
        return self.error is None


def err(msg):
    return Result(error=msg)


class Session:
    """Who is asking: a console login, or the head-end."""

    def __init__(self, level=ANYONE, now_ms=0):
        self.level = level
        self.last_ms = now_ms
        self.confirm = None     # (code, deadline_ms) of a pending factory reset


class Commands:
    def __init__(self, app):
        self.app = app
        # (name, level, handler, usage, summary), in the order help lists them
        self.specs = (
            ("help", ANYONE, self.help, "help", "list commands"),
            ("status", ANYONE, self.status, "status", "meter state as key=value lines"),
            ("energy", ANYONE, self.energy, "energy", "energy register in Wh"),
            ("credit", ANYONE, self.credit, "credit", "credit in minor units"),
            ("relay", ANYONE, self.relay, "relay [open|close|auto|reset]",
             "relay state; technician: override, back to auto, reset a trip"),
            ("tariff", ANYONE, self.tariff, "tariff [set JSON]",
             "tariffs in force and pending; technician: install one"),
            ("time", ANYONE, self.time, "time [set ISO-TIME]",
             "billing clock; technician: set it (a sync)"),
            ("token", ANYONE, self.token, "token DIGITS",
             "enter an OpenPAYGO token (anyone: it is the customer's)"),
            ("emergency", ANYONE, self.emergency, "emergency",
             "take emergency credit (as the customer's button does)"),
            ("button", ANYONE, self.button, "button",
             "press the customer's button: reconnect a READY relay, reset a trip, "
             "or take emergency credit"),
            ("config", ANYONE, self.config, "config", "settings (secrets masked)"),
            ("log", ANYONE, self.log, "log [N]", "the last N events (default 10)"),
            ("alarms", ANYONE, self.alarms, "alarms", "active alarms"),
            ("login", ANYONE, self.login, "login PIN", "technician login"),
            ("logout", ANYONE, self.logout, "logout", "end the technician session"),
            ("topup", TECHNICIAN, self.topup, "topup AMOUNT REF [VEND_SEQ]",
             "add AMOUNT minor units; REF is unique per top-up"),
            ("cancel", TECHNICIAN, self.cancel, "cancel REF [VEND_SEQ]",
             "make sure the top-up REF is never credited (refused if it was)"),
            ("set", TECHNICIAN, self.set, "set KEY VALUE",
             "change a setting (see config; also pin, imp_per_kwh)"),
            ("clear", TECHNICIAN, self.clear, "clear", "clear alarms"),
            ("selftest", TECHNICIAN, self.selftest, "selftest", "check flash, ledger, relay"),
            ("reboot", TECHNICIAN, self.reboot, "reboot", "restart the meter"),
            ("factory-reset", TECHNICIAN, self.factory_reset, "factory-reset [CODE]",
                              "settings back to defaults (asks for a code)"),
            ("repl", TECHNICIAN, self.repl, "repl", "leave to the MicroPython REPL"),
        )
        self.table = {spec[0]: spec for spec in self.specs}
        # commands anyone may read that change something when given arguments
        self.change_level = {"relay": TECHNICIAN, "tariff": TECHNICIAN, "time": TECHNICIAN}

    def run(self, session, words, now_ms):
        """Run one command given as a list of words."""
        if not words:
            return Result()
        name, args = words[0].lower(), words[1:]
        entry = self.table.get(name)
        if entry is None:
            return err("unknown command %r (try help)" % name[:24])
        need = entry[1]
        if args and self.change_level.get(name, need) > need:
            need = self.change_level[name]
        if session.level < need:
            if not self.app.auth.has_pin():
                return err("no technician PIN set on this meter (provision one)")
            return err("technician login required")
        try:
            return entry[2](session, args, now_ms)
        except (ValueError, Rejected) as e:
            return err(str(e))

    # -- anyone ----------------------------------------------------------------

    def help(self, s, args, now):
        lines = []
        for _, level, _, usage, summary in self.specs:
            tag = " (technician)" if level == TECHNICIAN else ""
            lines.append("%-24s %s%s" % (usage, summary, tag))
        return Result(lines)

    def status(self, s, args, now):
        a, lg = self.app, self.app.ledger
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
            "session=" + LEVEL_NAMES[s.level],
            "uptime_s=%d" % ((now - a.boot_ms) // 1000),
            "events=%d" % a.log.seq,
        ] + ([] if a.sync is None else
             ["mqtt=" + a.sync.state(), "mqtt_error=" + (a.sync.last_error or "none")]))

    def energy(self, s, args, now):
        lg = self.app.ledger
        return Result(["energy_wh=" + wh_text(lg.pulses, lg.imp)])

    def credit(self, s, args, now):
        return Result(["credit=%d" % self.app.ledger.credit])

    def relay(self, s, args, now):
        a = self.app
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

    def tariff(self, s, args, now):
        a = self.app
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
        for t in tariff.pending(a.tariffs(), wall):
            lines.append("pending=" + json.dumps(t))
        return Result(lines)

    def time(self, s, args, now):
        a = self.app
        if args:
            if args[0] != "set" or len(args) != 2:
                return err("usage: time [set ISO-TIME]")
            a.sync_clock(parse_iso(args[1]), now)
        wall = a.clock.now(now)
        return Result(["time=" + format_iso(wall), "local=" + format_iso(a.local(wall)),
                       "clock=" + ("synced" if a.clock.synced else "unsynced")])

    def token(self, s, args, now):
        if not args:
            return err("usage: token DIGITS (groups separated by spaces or dashes are fine)")
        kind, credit = self.app.enter_token("".join(args), now)
        lg = self.app.ledger
        return Result(["token=" + kind, "value=%d" % credit, "credit=%d" % lg.credit,
                       "payg=" + ("off" if lg.payg_off else "on")])

    def button(self, s, args, now):
        a = self.app
        what = a.button(now)
        if what is None:
            return err("the button has nothing to do now (relay %s)" % a.relay.state)
        if what == "hold-off":
            return err("the trip is in its hold-off; press again later")
        return Result(["relay_state=" + a.relay.state, "relay=" +
                       ("closed" if a.relay.closed else "open")])

    def emergency(self, s, args, now):
        credit = self.app.take_emergency(now)
        return Result(["credit=%d" % credit, "emergency=%d" % self.app.ledger.emergency])

    def config(self, s, args, now):
        a = self.app
        lines = ["imp_per_kwh=%d" % a.ledger.imp]
        for k in CONFIG_KEYS:
            v = a.settings.get(k)
            if k in SECRETS and v:
                v = "***"
            lines.append("%s=%s" % (k, v))
        lines.append("relay_mode=" + a.settings.get("relay_mode"))
        lines.append("pin=" + ("set" if a.auth.has_pin() else "unset"))
        return Result(lines)

    def log(self, s, args, now):
        if len(args) > 1:
            return err("usage: log [N]")
        n = _int(args[0], "N", 1, MAX_LOG) if args else 10
        return Result(["seq=%d t=%d kind=%s value=%d detail=%s"
                       % (e[0], e[1], kind_name(e[2]), e[3], e[4])
                       for e in self.app.log.last(n)])

    def alarms(self, s, args, now):
        return Result(["alarms=" + (",".join(self.app.events.alarms) or "none")])

    def login(self, s, args, now):
        if len(args) != 1:
            return err("usage: login PIN")
        a = self.app
        why = a.auth.check(args[0], now)
        if why is not None:
            s.level = ANYONE   # a failed login ends any session on this line
            kind = "lockout" if "locked" in why else "login_failed"
            a.emit({"event": kind, "value": a.auth.failures()}, now)
            if kind == "lockout":
                a.alarm("lockout", now)
            return err(why)
        s.level = TECHNICIAN
        a.emit({"event": "login"}, now)
        return Result(["session=technician"])

    def logout(self, s, args, now):
        if s.level >= TECHNICIAN:
            self.app.emit({"event": "logout", "detail": "user"}, now)
        s.level = ANYONE
        return Result(["session=anyone"])

    # -- technician --------------------------------------------------------------

    def topup(self, s, args, now):
        if len(args) not in (2, 3):
            return err("usage: topup AMOUNT REF [VEND_SEQ]")
        amount = _int(args[0], "AMOUNT", 1, 0xFFFFFFFF)
        vseq = _int(args[2], "VEND_SEQ", 1, 0xFFFFFFFF) if len(args) == 3 else None
        credit = self.app.topup(args[1], amount, now, vseq)
        return Result(["credit=%d" % credit])

    def cancel(self, s, args, now):
        if len(args) not in (1, 2):
            return err("usage: cancel REF [VEND_SEQ]")
        vseq = _int(args[1], "VEND_SEQ", 1, 0xFFFFFFFF) if len(args) == 2 else None
        self.app.cancel_vend(args[0], now, vseq)
        return Result(["cancelled=" + args[0]])

    def set(self, s, args, now):
        if len(args) != 2:
            return err("usage: set KEY VALUE")
        key, text = args[0].lower(), args[1]
        a = self.app
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
        value = parse_setting(key, text)
        a.settings.save({key: value})
        a.emit({"event": "config", "detail": key}, now)
        a.refresh(now)
        return Result(["%s=%s" % (key, "***" if key in SECRETS else value)])

    def clear(self, s, args, now):
        return Result(["cleared=" + self.app.events.clear_alarms(now)])

    def selftest(self, s, args, now):
        a = self.app
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

    def reboot(self, s, args, now):
        self.app.ledger.flush()
        self.app.emit({"event": "reboot"}, now)
        return Result(["rebooting"], action="reboot")

    def factory_reset(self, s, args, now):
        """Two steps: without a code, a code is issued; the same command with
        that code within a minute resets. Credit and energy are kept: they
        are the tenant's, not configuration."""
        if not args:
            code = "%04d" % (int.from_bytes(os.urandom(2), "little") % 10000)
            s.confirm = (code, now + CONFIRM_MS)
            return Result(["confirm within 60 s with: factory-reset " + code])
        pending, s.confirm = s.confirm, None
        if pending is None or now > pending[1] or args[0] != pending[0]:
            return err("wrong or expired confirmation code; nothing reset")
        self.app.factory_reset(now)
        s.level = ANYONE
        return Result(["settings reset; PIN removed; credit and energy kept"])

    def repl(self, s, args, now):
        if s.level == HEADEND:
            return err("the REPL is only for a technician at the meter")
        self.app.ledger.flush()
        self.app.emit({"event": "repl"}, now)
        return Result(["leaving to the REPL"], action="repl")
