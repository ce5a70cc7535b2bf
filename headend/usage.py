"""Usage and credit figures from a meter's readings (at, credit, energy_mwh),
for the meter and tenant pages. Days are the service host's local days."""

import time

DAY = 86400


def local_day(at):
    return time.strftime("%Y-%m-%d", time.localtime(at))


def day_start(at, back=0):
    """The local midnight `back` days before the day of `at`."""
    t = time.localtime(at)
    return time.mktime((t.tm_year, t.tm_mon, t.tm_mday - back, 0, 0, 0, 0, 0, -1))


def month_start(at):
    t = time.localtime(at)
    return time.mktime((t.tm_year, t.tm_mon, 1, 0, 0, 0, 0, 0, -1))


def used_between(readings, start, end):
    """Energy (mWh) between consecutive readings, counted on the day the
    interval starts in [start, end) (an energy register that went back, e.g.
    after a unit change, counts 0)."""
    total = 0
    for (a0, _, e0), (a1, _, e1) in zip(readings, readings[1:]):
        if start <= a0 < end and e1 > e0:
            total += e1 - e0
    return total


def daily(readings, now, days=14):
    """[(day, mWh)] for the last `days` local days, oldest first."""
    out = []
    for back in range(days - 1, -1, -1):
        s = day_start(now, back)
        out.append((local_day(s + 1), used_between(readings, s, day_start(s + DAY + 3600))))
    return out


def spend_per_day(readings, now, window=7 * DAY):
    """Credit spent per day (minor units) over the last `window` seconds of
    readings; None with less than an hour of them. An interval in which the
    credit rose held a top-up, and its spending is unknown: it is left out,
    its time with it."""
    rs = [r for r in readings if r[0] >= now - window]
    spent = span = 0
    for (a0, c0, _), (a1, c1, _) in zip(rs, rs[1:]):
        if c1 <= c0:
            spent, span = spent + c0 - c1, span + a1 - a0
    return spent * DAY // int(span) if span >= 3600 else None


def summary(readings, credit, now):
    """What the tenant page shows beside the balance."""
    rate = spend_per_day(readings, now)
    days_left = None
    if rate and credit is not None:
        days_left = max(0, credit) // rate
    return {"today_mwh": used_between(readings, day_start(now), now + 1),
            "month_mwh": used_between(readings, month_start(now), now + 1),
            "spend_per_day": rate, "days_left": days_left}
