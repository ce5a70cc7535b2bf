# The customer's OpenPAYGO tokens (keypad, console or MQTT): entry, the wait
# after wrong ones, and applying a right one to the ledger in one checkpoint.
# A wrong token is counted on flash before it is decoded, so a power cut can
# never make a guess free. The decoder (firmware/token.py, with SipHash) loads
# with the first token: a meter vended over MQTT may never need its RAM.

from firmware.ledger import Rejected
from firmware.relay import TOKEN


def wait_s(fails):
    """Wait after `fails` wrong tokens in a row: 5 s, doubling, at most an hour."""
    if fails <= 0:
        return 0
    return 3600 if fails > 10 else min(5 << (fails - 1), 3600)


class TokenDesk:
    def __init__(self, app, now_ms):
        self.app = app
        # the wait starts over after a reboot, it is never shorter
        self.locked_until = now_ms + 1000 * wait_s(app.ledger.tok_fails)

    def _refuse(self, value, detail, now_ms, why):
        self.app.emit({"event": "token_rejected", "value": value, "detail": detail}, now_ms)
        return ValueError(why)

    def enter(self, text, now_ms):
        """Returns (kind name, credit added or set); ValueError says why the
        token was refused. Only wrong tokens cost a wait; a used one does not."""
        a = self.app
        s, lg = a.settings, a.ledger
        if not s.get("token_key"):
            raise ValueError("this meter has no token key (provision one)")
        left = self.locked_until - now_ms
        if left > 0:
            raise self._refuse(lg.tok_fails, "locked", now_ms, "%s; try again in %d s" % (
                "a wrong token was entered" if lg.tok_fails <= 1 else
                "%d wrong tokens in a row" % lg.tok_fails, (left + 999) // 1000))
        from firmware import token as T
        key = bytes.fromhex(s.get("token_key"))
        # people type tokens in groups: "418 480 640", "418-480-640"
        text = "".join(c for c in text if c not in " -")
        try:
            T.check_text(text, bool(s.get("token_restricted")))
        except ValueError as e:
            raise self._refuse(0, "not a token", now_ms, str(e))
        # counted as wrong on flash before it is decoded (a right token puts
        # the count back: apply_token zeroes it)
        before = lg.tok_fails
        fails = before + 1
        lg.token_fails(fails)
        kind, value, count, used = T.decode(
            text, key, lg.tok_count, lg.token_used(),
            s.get("token_start") or T.starting_code(key), bool(s.get("token_restricted")))
        if kind == T.INVALID:
            wait = wait_s(fails)
            self.locked_until = now_ms + 1000 * wait
            raise self._refuse(fails, "invalid", now_ms,
                               "invalid token; wait %d s before the next one" % wait)
        if kind == T.ALREADY_USED:
            lg.token_fails(before)        # a used token costs no wait
            raise self._refuse(0, "already used", now_ms, "token already used")
        name = T.SHORT_NAMES[kind]
        credit = value * s.get("token_unit_credit") // s.get("token_divider") \
            if kind in (T.ADD, T.SET) else 0
        try:
            if kind in (T.ADD, T.SET):
                a.check_limits(credit, credit + (lg.credit if kind == T.ADD else 0))
        except Rejected as e:
            # a right token, not spent: it can be entered once there is room
            lg.token_fails(before)
            raise self._refuse(credit, "limit", now_ms, str(e))
        lg.apply_token(name, credit, count, used, s.get("debt_share_pct"), s.get("debt_cap"))
        self.locked_until = 0
        a.emit({"event": "token", "value": credit, "detail": "%s:%d" % (name, count)}, now_ms)
        a.supply.decide(TOKEN, now_ms)
        return name, credit
