# Checking a tariff before the meter takes it (firmware/tariff.py has the
# format): loaded only when one arrives, so a meter keeps that RAM otherwise.

KINDS = ("flat", "tou", "block")
MAX_PRICE = 10 ** 7
MAX_STEPS = 12


def _int(v, what, lo, hi):
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise ValueError("%s must be a whole number %d..%d" % (what, lo, hi))
    return v


def _steps(v, what, hi):
    if not isinstance(v, list) or not 1 <= len(v) <= MAX_STEPS:
        raise ValueError("%s must be a list of 1..%d [from, price] pairs" % (what, MAX_STEPS))
    out = []
    for p in v:
        if not isinstance(p, list) or len(p) != 2:
            raise ValueError("%s must be a list of [from, price] pairs" % what)
        out.append([_int(p[0], what + " start", 0, hi), _int(p[1], what + " price", 0, MAX_PRICE)])
    if out[0][0] != 0:
        raise ValueError("%s must start at 0" % what)
    for i in range(1, len(out)):
        if out[i][0] <= out[i - 1][0]:
            raise ValueError("%s starts must increase" % what)
    return out


def validate(t):
    """A checked copy of tariff t, or ValueError saying what is wrong."""
    if not isinstance(t, dict):
        raise ValueError("a tariff is a JSON object")
    kind = t.get("kind")
    if kind not in KINDS:
        raise ValueError("tariff kind must be flat, tou or block")
    out = {"version": _int(t.get("version"), "version", 1, 2 ** 31 - 1),
           "activate": _int(t.get("activate", 0), "activate", 0, 2 ** 32 - 1),
           "kind": kind,
           "standing_per_day": _int(t.get("standing_per_day", 0), "standing_per_day", 0,
                                    MAX_PRICE)}
    if kind == "flat":
        out["price"] = _int(t.get("price"), "price", 0, MAX_PRICE)
    elif kind == "tou":
        out["weekday"] = _steps(t.get("weekday"), "weekday", 1439)
        out["weekend"] = _steps(t.get("weekend", t.get("weekday")), "weekend", 1439)
    else:
        out["tiers"] = _steps(t.get("tiers"), "tiers", 10 ** 6)
    known = ("version", "activate", "kind", "standing_per_day", "price", "weekday",
             "weekend", "tiers")
    for k in t:
        if k not in known:
            raise ValueError("unknown tariff field %r" % str(k)[:20])
    return out
