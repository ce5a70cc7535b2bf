# Modules a meter needs only now and then (a console command's handlers, the
# settings table, tariff checks) are loaded for one call and dropped after it:
# on a board that runs the firmware from .mpy files, a loaded module's
# bytecode, tables and names live in the heap (docs/boards.md, "Heap").

import sys

# Only these are ever dropped: their functions keep no state, and nothing
# outside the call keeps one of their objects (a class, a sentinel), so a
# later import builds the same module again.
TRANSIENT = ("firmware.cmd_read", "firmware.cmd_admin", "firmware.cmd_help",
             "firmware.schema", "firmware.tariffcheck")


def call(modname, fn, *args):
    """modname.fn(*args), with the transient modules the call loaded dropped
    after it."""
    before = set(sys.modules)
    try:
        return getattr(__import__(modname, None, None, [fn]), fn)(*args)
    finally:
        for name in TRANSIENT:
            if name in sys.modules and name not in before:
                drop(name)


def drop(name):
    del sys.modules[name]
    pkg, leaf = name.rsplit(".", 1)
    parent = sys.modules.get(pkg)
    if parent is not None and hasattr(parent, leaf):
        delattr(parent, leaf)
