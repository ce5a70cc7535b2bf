# Civil calendar in integer arithmetic (proleptic Gregorian, days since
# 1970-01-01). MicroPython ports disagree on the time module's epoch, so the
# billing code does its own date arithmetic.

DAY = 86400


def days_from_civil(y, m, d):
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def civil_from_days(z):
    z += 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + (3 if mp < 10 else -9)
    return y + (m <= 2), m, d


def weekday(days):
    """0 = Monday ... 6 = Sunday."""
    return (days + 3) % 7


def month_key(days):
    y, m, _ = civil_from_days(days)
    return y * 12 + (m - 1)


def parse_iso(text):
    """'YYYY-MM-DDTHH:MM[:SS][Z]' or 'YYYY-MM-DD' (UTC) -> seconds since 1970."""
    t = text.strip().rstrip("Z")
    date, _, clock = t.replace(" ", "T").partition("T")
    try:
        y, m, d = [int(x) for x in date.split("-")]
        hms = [int(x) for x in clock.split(":")] if clock else []
    except ValueError:
        raise ValueError("time must be YYYY-MM-DDTHH:MM[:SS], got %r" % text[:40])
    while len(hms) < 3:
        hms.append(0)
    if not (1970 <= y <= 2105 and 1 <= m <= 12 and 1 <= d <= 31 and len(hms) == 3
            and 0 <= hms[0] < 24 and 0 <= hms[1] < 60 and 0 <= hms[2] < 60):
        raise ValueError("time out of range: %r" % text[:40])
    days = days_from_civil(y, m, d)
    if civil_from_days(days) != (y, m, d):
        raise ValueError("no such date: %r" % text[:40])
    return days * DAY + hms[0] * 3600 + hms[1] * 60 + hms[2]


def format_iso(s):
    days, rest = divmod(s, DAY)
    y, m, d = civil_from_days(days)
    return "%04d-%02d-%02dT%02d:%02d:%02dZ" % (y, m, d, rest // 3600, rest // 60 % 60, rest % 60)
