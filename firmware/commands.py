# The one command layer. The console, MQTT and tokens all call run(); each
# command has one authorisation rule and returns a Result: lines of text and
# either ok or an error message. A command that fails changes nothing.

from firmware import transient
from firmware.cmdbase import ANYONE, REMOTE, TECHNICIAN, Result, err
from firmware.ledger import Rejected

# (name, level, level with arguments, "module.function"), in the order help
# lists them: the one place that says who may run what. The handler's module
# (firmware/cmd_read.py, cmd_admin.py, cmd_help.py, which holds each
# command's usage and summary) is loaded for the command and dropped after it
# (firmware/transient.py). REMOTE: unsigned over MQTT too, so only reads
# without arguments and the token (it authenticates itself: anyone, from
# anywhere).
SPECS = (
    ("help", REMOTE, ANYONE, "cmd_help.help"),
    ("status", REMOTE, ANYONE, "cmd_read.status"),
    ("energy", REMOTE, ANYONE, "cmd_read.energy"),
    ("credit", REMOTE, ANYONE, "cmd_read.credit"),
    ("relay", REMOTE, TECHNICIAN, "cmd_read.relay"),
    ("tariff", REMOTE, TECHNICIAN, "cmd_read.tariff"),
    ("time", REMOTE, TECHNICIAN, "cmd_read.time"),
    ("token", REMOTE, REMOTE, "cmd_read.token"),
    ("emergency", ANYONE, ANYONE, "cmd_read.emergency"),
    ("button", ANYONE, ANYONE, "cmd_read.button"),
    ("config", REMOTE, ANYONE, "cmd_read.config"),
    ("log", REMOTE, ANYONE, "cmd_read.log"),
    ("alarms", REMOTE, ANYONE, "cmd_read.alarms"),
    ("login", ANYONE, ANYONE, "cmd_read.login"),
    ("logout", ANYONE, ANYONE, "cmd_read.logout"),
    ("topup", TECHNICIAN, TECHNICIAN, "cmd_admin.topup"),
    ("cancel", TECHNICIAN, TECHNICIAN, "cmd_admin.cancel"),
    ("set", TECHNICIAN, TECHNICIAN, "cmd_admin.setting"),
    ("clear", TECHNICIAN, TECHNICIAN, "cmd_admin.clear"),
    ("selftest", TECHNICIAN, TECHNICIAN, "cmd_admin.selftest"),
    ("reboot", TECHNICIAN, TECHNICIAN, "cmd_admin.reboot"),
    ("update", TECHNICIAN, TECHNICIAN, "cmd_admin.update"),
    ("factory-reset", TECHNICIAN, TECHNICIAN, "cmd_admin.factory_reset"),
    ("repl", TECHNICIAN, TECHNICIAN, "cmd_admin.repl"),
)


def spec(name):
    for s in SPECS:
        if s[0] == name:
            return s
    return None


class Commands:
    def __init__(self, app):
        self.app = app

    def level(self, name, args):
        """The level a command needs (None: no such command)."""
        entry = spec(name)
        return None if entry is None else entry[2 if args else 1]

    def run(self, session, words, now_ms):
        """Run one command given as a list of words."""
        try:
            return self._run(session, words, now_ms)
        except MemoryError:
            # a reply, not the end of the meter's loop; the reply is made at
            # import (it cannot be allocated now). A top-up cut short here is on
            # the ledger or not at all, and its REF makes a retry safe.
            return OUT_OF_MEMORY

    def _run(self, session, words, now_ms):
        if not words:
            return Result()
        name, args = words[0].lower(), words[1:]
        entry = spec(name)
        if entry is None:
            return err("unknown command %r (try help)" % name[:24])
        if session.level < entry[2 if args else 1]:
            if not self.app.auth.has_pin():
                return err("no technician PIN set on this meter (provision one)")
            return err("technician login required")
        mod, fn = entry[3].split(".")
        try:
            return transient.call("firmware." + mod, fn, self.app, session, args, now_ms)
        except (ValueError, Rejected) as e:
            return err(str(e))


OUT_OF_MEMORY = err("out of memory: try again")
