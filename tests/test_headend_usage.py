"""The tenant page's figures from readings: usage by local day and month, the
spending rate (top-ups are not spending) and the days the credit lasts."""

import time

from headend import usage


def local(y, mo, d, h=0, mi=0):
    return time.mktime((y, mo, d, h, mi, 0, 0, 0, -1))


def readings(start, hours, credit, per_hour_credit, per_hour_mwh, topup_at=None, topup=0):
    out, e = [], 0
    for i in range(hours + 1):
        if topup_at is not None and i == topup_at:
            credit += topup
        out.append((start + i * 3600, credit, e))
        credit -= per_hour_credit
        e += per_hour_mwh
    return out


def test_days_left_counts_spending_not_top_ups():
    start = local(2026, 3, 1, 0)
    rs = readings(start, 72, 100000, 50, 1000, topup_at=30, topup=5000)
    now = rs[-1][0]
    s = usage.summary(rs, rs[-1][1], now)
    assert s["spend_per_day"] == 50 * 24                  # the top-up is not spending
    assert s["days_left"] == rs[-1][1] // (50 * 24)
    assert s["today_mwh"] == 0                            # midnight of the 4th: nothing yet
    assert s["month_mwh"] == 72 * 1000


def test_usage_by_local_day_splits_at_midnight_and_ignores_a_register_going_back():
    start = local(2026, 4, 30, 20)
    rs = readings(start, 8, 1000, 1, 500)                 # 20:00 to 04:00 on 1 May
    rs[6:] = [(a, c, e - 2500) for a, c, e in rs[6:]]     # the register restarts at 02:00
    now = rs[-1][0]
    days = dict(usage.daily(rs, now, days=3))
    assert days["2026-04-30"] == 4 * 500                  # 20:00..24:00
    assert days["2026-05-01"] == 3 * 500                  # 00-01, 02-03, 03-04 (01-02 fell)
    assert days["2026-04-29"] == 0
    s = usage.summary(rs, 10, now)
    assert s["today_mwh"] == s["month_mwh"] == 3 * 500
    assert s["spend_per_day"] == 24 and s["days_left"] == 0
