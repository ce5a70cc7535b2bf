# The head-end's commands as they arrive over MQTT: checked (firmware/cmdauth),
# limited (a flood budget for whatever is not a valid signed command), run
# through the console's command table, and answered. The transport
# (firmware/sync.py) hands each message in and publishes the reply.

from firmware.cmdauth import FloodBudget, Refused, verify
from firmware.cmdbase import HEADEND, REMOTE, Result, Session

SESSION_MS = 120000        # a head-end session's state (a pending confirmation) lasts


def reply(ctr, result=None, error=None):
    body = {"ctr": ctr, "ok": error is None and result is not None and result.ok}
    if result is not None:
        body["lines"] = result.lines
        if not result.ok:
            body["error"] = result.error
    if error is not None:
        body["error"] = error
    return body


class Desk:
    def __init__(self, app, commands, meter_id, key, delivery, stats):
        self.app = app
        self.commands = commands
        self.id = meter_id
        self.key = key
        self.delivery = delivery
        self.stats = stats
        self.budget = FloodBudget()
        self.session = None        # the head-end's command session
        self.action = None         # "reboot": asked for by a signed command

    def tick(self, now_ms):
        """When a flood window ends, one event says how much it ignored."""
        ended = self.budget.close(now_ms)
        if ended and ended[0]:
            self.app.emit({"event": "cmd_flood", "value": ended[0],
                           "detail": "ignored in %d s" % ended[1]}, now_ms)

    def _spend(self, now_ms):
        if self.budget.spend(now_ms):
            return True
        self.stats["ignored"] += 1
        return False

    def reject(self, ctr, why, now_ms):
        """A refusal: an event and an error reply, within the flood budget."""
        self.stats["rejected"] += 1
        if not self._spend(now_ms):
            return None
        self.app.emit({"event": "cmd_rejected", "value": ctr if isinstance(ctr, int) else 0,
                       "detail": why}, now_ms)
        return reply(ctr, error=why)

    def handle(self, msg, now_ms):
        """Check and run one command; the reply body, or None when the flood
        budget leaves it unanswered. A replayed, forged, expired or malformed
        command is refused and changes nothing."""
        s, clock = self.app.settings, self.app.clock
        try:
            ctr, cmd, args, signed = verify(msg, self.id, self.key, s.get("hc_ctr") or 0,
                                            clock.now(now_ms) if clock.synced else None)
        except Refused as e:
            return self.reject(e.args[0], e.args[1], now_ms)
        if not signed:
            # the command table says what anyone on the broker may run
            if (self.commands.level(cmd, args) or REMOTE) > REMOTE:
                return self.reject(ctr, "signature required", now_ms)
            if not self._spend(now_ms):
                return None
            return reply(ctr, self.commands.run(Session(REMOTE, now_ms), [cmd] + args, now_ms))
        s.save({"hc_ctr": ctr})      # before running: never twice, whatever happens
        if cmd == "resend":
            return self._resend(ctr, args)
        ses = self.session
        if ses is None or now_ms - ses.last_ms > SESSION_MS:
            # one head-end session, kept between commands: a factory reset's
            # confirmation code is asked for by one command and given by the next
            ses = self.session = Session(HEADEND, now_ms)
        ses.last_ms = now_ms
        ses.level = HEADEND        # a signed command is the head-end's, whatever came before
        r = self.commands.run(ses, [cmd] + args, now_ms)
        if r.action == "reboot":
            self.action = "reboot"     # the shell carries it out after this poll
        return reply(ctr, r)

    def _resend(self, ctr, args):
        """The head-end missed events (a broker that crashed after it had
        acknowledged them): publish again from event FROM, while the log
        still holds it."""
        try:
            first = int(args[0])
            if len(args) != 1 or first < 1:
                raise ValueError
        except (ValueError, IndexError):
            return reply(ctr, error="usage: resend FROM_SEQ")
        self.delivery.rewind(first)
        return reply(ctr, Result(["resend_from=%d" % first]))
