# Who may run a head-end command that arrives over MQTT (docs/mqtt.md):
# checking a message changes nothing; the caller stores the counter of an
# accepted signed command before it runs it.
#
# A command that changes anything is signed with the meter's key over its
# meter id, counter, expiry, name and arguments, and carries a counter above
# every one accepted before (below MAX_CTR: one absurd counter would otherwise
# refuse every later command). Which commands may come unsigned is the
# command table's to say (firmware/commands.py, level REMOTE).

import json

from firmware.signing import canonical, hmac_sha256, same

MAX_CMD_BYTES = 2048
MAX_CTR = 1 << 48
# Messages that are not valid signed commands (unsigned reads, and anything
# refused) get an answer, and a refusal an event, for the first FLOOD_BUDGET of
# each FLOOD_WINDOW_MS; the rest of the window's are counted, unanswered, into
# one `cmd_flood` event. A flood then costs the event log at most 11 records a
# minute (a 4-sector log reaches 100,000 erases after 7 years of it); signed
# commands are never limited.
FLOOD_BUDGET = 10
FLOOD_WINDOW_MS = 60000


class Refused(Exception):
    """args: (ctr or None, why)."""


def verify(msg, meter_id, key, last_ctr, clock_now):
    """(ctr, cmd, args, signed): a well-formed command, rightly signed if
    signed, or Refused. last_ctr: the highest counter accepted; clock_now:
    UTC seconds, or None while the clock is not synced (expiry is then not
    checked)."""
    if len(msg) > MAX_CMD_BYTES:
        raise Refused(None, "command too long")
    try:
        c = json.loads(msg)
        ctr, cmd, args = c["ctr"], c["cmd"], c.get("args", [])
        exp, sig = c.get("exp", 0), c.get("sig")
        if not (isinstance(ctr, int) and isinstance(cmd, str) and isinstance(exp, int)
                and isinstance(args, list) and all(isinstance(a, str) for a in args)):
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise Refused(None, "malformed command")
    if sig is None:
        return ctr, cmd, args, False
    try:
        want = hmac_sha256(key, canonical(meter_id, ctr, exp, cmd, args))
        good = isinstance(sig, str) and same(want, bytes.fromhex(sig))
    except ValueError:
        good = False
    if not good:
        raise Refused(ctr, "bad signature")
    if not 0 < ctr < MAX_CTR:
        raise Refused(ctr, "counter out of range (1..%d)" % (MAX_CTR - 1))
    if ctr <= last_ctr:
        raise Refused(ctr, "replayed command (counter %d not above %d)" % (ctr, last_ctr))
    if exp and clock_now is not None and clock_now > exp:
        raise Refused(ctr, "expired command")
    return ctr, cmd, args, True


class FloodBudget:
    """Counts the messages that are not valid signed commands in windows of
    FLOOD_WINDOW_MS (meter time)."""

    def __init__(self):
        self.start = None          # meter ms the current window began
        self.seen = 0              # such messages in it

    def spend(self, now_ms):
        """Count one; False once this window's budget is spent."""
        if self.start is None:
            self.start, self.seen = now_ms, 0
        self.seen += 1
        return self.seen <= FLOOD_BUDGET

    def close(self, now_ms):
        """At most once a window: how many it ignored (0 if none), and how long
        it lasted in s; None while the window is still open."""
        if self.start is None or now_ms - self.start < FLOOD_WINDOW_MS:
            return None
        out = (max(0, self.seen - FLOOD_BUDGET), (now_ms - self.start) // 1000)
        self.start = None
        return out
