# Credit policy: the credit state with hysteresis, friendly-credit periods and
# whether the supply may be on. Pure functions of their arguments.

from firmware.calendar import DAY, days_from_civil, weekday

STATES = ("ok", "low", "emergency", "exhausted", "friendly")


def parse_period(text):
    """'HH:MM-HH:MM' -> (start_minute, end_minute); '' -> None. The period may
    wrap midnight (18:00-08:00)."""
    if not text:
        return None
    try:
        a, b = text.split("-")
        out = []
        for hm in (a, b):
            h, m = hm.split(":")
            h, m = int(h), int(m)
            if not (0 <= h < 24 and 0 <= m < 60):
                raise ValueError
            out.append(h * 60 + m)
    except ValueError:
        raise ValueError("period must be HH:MM-HH:MM, got %r" % text[:20])
    if out[0] == out[1]:
        raise ValueError("period must not be empty")
    return out[0], out[1]


def parse_holidays(text):
    """'YYYY-MM-DD,YYYY-MM-DD' -> sorted day numbers; '' -> []."""
    days = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            y, m, d = [int(x) for x in part.split("-")]
        except ValueError:
            raise ValueError("holidays are YYYY-MM-DD,..., got %r" % part[:20])
        if not (1970 <= y <= 2105 and 1 <= m <= 12 and 1 <= d <= 31):
            raise ValueError("no such date %r" % part[:20])
        days.append(days_from_civil(y, m, d))
    return sorted(days)


def in_friendly(nights, weekends, holidays, local_s):
    """Inside a friendly-credit period: no disconnection for lack of credit."""
    day, secs = divmod(local_s, DAY)
    if weekends and weekday(day) >= 5:
        return True
    if day in holidays:
        return True
    if nights:
        m = secs // 60
        a, b = nights
        return a <= m < b if a < b else (m >= a or m < b)
    return False


def next_change(nights, local_s):
    """Seconds from local_s to the next start or end of the nightly friendly
    period within the local day, or None (days change at midnight)."""
    if not nights:
        return None
    secs = local_s % DAY
    best = None
    for m in nights:
        d = m * 60 - secs
        if d > 0 and (best is None or d < best):
            best = d
    return best


def credit_state(credit, emergency, low, low_clear, prev, friendly):
    """ok -> low below `low`, back to ok only at `low_clear` or above;
    emergency while emergency credit is outstanding; exhausted at zero credit,
    or friendly instead inside a friendly period."""
    if credit <= 0:
        return "friendly" if friendly else "exhausted"
    if emergency > 0:
        return "emergency"
    if credit < low or (prev == "low" and credit < low_clear):
        return "low"
    return "ok"


def supply_allowed(state):
    return state != "exhausted"
