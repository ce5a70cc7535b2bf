# The one command layer. The console, MQTT and tokens all call run(); each
# command has one authorisation rule and returns a Result: lines of text and
# either ok or an error message. A command that fails changes nothing.

from firmware.cmdbase import ANYONE, REMOTE, TECHNICIAN, Result, err
from firmware.ledger import Rejected

class Commands:
    def __init__(self, app):
        self.app = app
        # (name, level, level with arguments, handler, usage, summary), in the
        # order help lists them: the one place that says who may run what.
        # A handler named "module.function" (firmware/cmd_read.py, cmd_admin.py)
        # is loaded with the first command that needs it: a meter nobody talks
        # to keeps that RAM.
        # REMOTE: unsigned over MQTT too, so only reads without arguments
        # and the token (it authenticates itself)
        self.specs = (
            ("help", REMOTE, ANYONE, self.help, "help", "list commands"),
            ("status", REMOTE, ANYONE, "cmd_read.status", "status", "meter state as key=value lines"),
            ("energy", REMOTE, ANYONE, "cmd_read.energy", "energy", "energy register in Wh"),
            ("credit", REMOTE, ANYONE, "cmd_read.credit", "credit", "credit in minor units"),
            ("relay", REMOTE, TECHNICIAN, "cmd_read.relay", "relay [open|close|auto|reset]",
             "relay state; technician: override, back to auto, reset a trip"),
            ("tariff", REMOTE, TECHNICIAN, "cmd_read.tariff", "tariff [set JSON]",
             "tariffs in force and pending; technician: install one"),
            ("time", REMOTE, TECHNICIAN, "cmd_read.time", "time [set ISO-TIME]",
             "billing clock; technician: set it (a sync)"),
            # the token authenticates itself: anyone, from anywhere
            ("token", REMOTE, REMOTE, "cmd_read.token", "token DIGITS",
             "enter an OpenPAYGO token (anyone: it is the customer's)"),
            ("emergency", ANYONE, ANYONE, "cmd_read.emergency", "emergency",
             "take emergency credit (as the customer's button does)"),
            ("button", ANYONE, ANYONE, "cmd_read.button", "button",
             "press the customer's button: reconnect a READY relay, reset a trip, "
             "or take emergency credit"),
            ("config", REMOTE, ANYONE, "cmd_read.config", "config", "settings (secrets masked)"),
            ("log", REMOTE, ANYONE, "cmd_read.log", "log [N]", "the last N events (default 10)"),
            ("alarms", REMOTE, ANYONE, "cmd_read.alarms", "alarms", "active alarms"),
            ("login", ANYONE, ANYONE, "cmd_read.login", "login PIN", "technician login"),
            ("logout", ANYONE, ANYONE, "cmd_read.logout", "logout", "end the technician session"),
            ("topup", TECHNICIAN, TECHNICIAN, "cmd_admin.topup", "topup AMOUNT REF [VEND_SEQ]",
             "add AMOUNT minor units; REF is unique per top-up"),
            ("cancel", TECHNICIAN, TECHNICIAN, "cmd_admin.cancel", "cancel REF [VEND_SEQ]",
             "make sure the top-up REF is never credited (refused if it was)"),
            ("set", TECHNICIAN, TECHNICIAN, "cmd_admin.setting", "set KEY VALUE",
             "change a setting (see config; also pin, imp_per_kwh)"),
            ("clear", TECHNICIAN, TECHNICIAN, "cmd_admin.clear", "clear", "clear alarms"),
            ("selftest", TECHNICIAN, TECHNICIAN, "cmd_admin.selftest", "selftest",
             "check flash, ledger, relay"),
            ("reboot", TECHNICIAN, TECHNICIAN, "cmd_admin.reboot", "reboot", "restart the meter"),
            ("factory-reset", TECHNICIAN, TECHNICIAN, "cmd_admin.factory_reset", "factory-reset [CODE]",
                              "settings back to defaults (asks for a code)"),
            ("repl", TECHNICIAN, TECHNICIAN, "cmd_admin.repl", "repl", "leave to the MicroPython REPL"),
        )
        self.table = {spec[0]: spec for spec in self.specs}

    def level(self, name, args):
        """The level a command needs (None: no such command)."""
        entry = self.table.get(name)
        return None if entry is None else entry[2 if args else 1]

    def run(self, session, words, now_ms):
        """Run one command given as a list of words."""
        if not words:
            return Result()
        name, args = words[0].lower(), words[1:]
        need = self.level(name, args)
        if need is None:
            return err("unknown command %r (try help)" % name[:24])
        if session.level < need:
            if not self.app.auth.has_pin():
                return err("no technician PIN set on this meter (provision one)")
            return err("technician login required")
        handler = self.table[name][3]
        if isinstance(handler, str):
            mod, fn = handler.split(".")
            handler = getattr(__import__("firmware." + mod, None, None, [fn]), fn)
        try:
            return handler(self.app, session, args, now_ms)
        except (ValueError, Rejected) as e:
            return err(str(e))

    def help(self, a, ses, args, now):
        lines = []
        for spec in self.specs:
            tag = " (technician)" if spec[1] == TECHNICIAN else ""
            lines.append("%-24s %s%s" % (spec[4], spec[5], tag))
        return Result(lines)
