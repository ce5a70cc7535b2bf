# What every command shares: who is asking (a Session and its level) and what
# a command returns (a Result). The table is firmware/commands.py.

# Who is asking. REMOTE: anyone on the broker (an unsigned MQTT message);
# ANYONE: anyone at the meter (the console, the button); a technician after
# login; the head-end by a signed command.
REMOTE, ANYONE, TECHNICIAN, HEADEND = 0, 1, 2, 3
LEVEL_NAMES = ("anyone", "anyone", "technician", "head-end")


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


def whole(text, name, lo, hi):
    """An integer lo..hi from text, or ValueError naming it."""
    try:
        v = int(text)
    except ValueError:
        raise ValueError("%s must be a whole number" % name)
    if not lo <= v <= hi:
        raise ValueError("%s must be %d..%d" % (name, lo, hi))
    return v
