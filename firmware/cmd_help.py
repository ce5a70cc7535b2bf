# `help`: each command's usage and summary, kept out of the resident command
# table (firmware/commands.py) since only `help` reads them.

from firmware.cmdbase import TECHNICIAN, Result
from firmware.commands import SPECS

TEXT = {
    "help": ("help", "list commands"),
    "status": ("status", "meter state as key=value lines"),
    "energy": ("energy", "energy register in Wh"),
    "credit": ("credit", "credit in minor units"),
    "relay": ("relay [open|close|auto|reset]",
              "relay state; technician: override, back to auto, reset a trip"),
    "tariff": ("tariff [set JSON]", "tariffs in force and pending; technician: install one"),
    "time": ("time [set ISO-TIME]", "billing clock; technician: set it (a sync)"),
    "token": ("token DIGITS", "enter an OpenPAYGO token (anyone: it is the customer's)"),
    "emergency": ("emergency", "take emergency credit (as the customer's button does)"),
    "button": ("button", "press the customer's button: reconnect a READY relay, reset a "
               "trip, or take emergency credit"),
    "config": ("config", "settings (secrets masked)"),
    "log": ("log [N]", "the last N events (default 10)"),
    "alarms": ("alarms", "active alarms"),
    "login": ("login PIN", "technician login"),
    "logout": ("logout", "end the technician session"),
    "topup": ("topup AMOUNT REF [VEND_SEQ]", "add AMOUNT minor units; REF is unique per top-up"),
    "cancel": ("cancel REF [VEND_SEQ]",
               "make sure the top-up REF is never credited (refused if it was)"),
    "set": ("set KEY VALUE", "change a setting (see config; also pin, imp_per_kwh)"),
    "clear": ("clear", "clear alarms"),
    "selftest": ("selftest", "check flash, ledger, relay"),
    "reboot": ("reboot", "restart the meter"),
    "update": ("update VERSION", "fetch, check and stage a signed firmware release"),
    "factory-reset": ("factory-reset [CODE]", "settings back to defaults (asks for a code)"),
    "repl": ("repl", "leave to the MicroPython REPL"),
}


def help(a, ses, args, now):
    lines = []
    for s in SPECS:
        usage, summary = TEXT[s[0]]
        lines.append("%-24s %s%s" % (usage, summary, " (technician)" if s[1] == TECHNICIAN else ""))
    return Result(lines)
