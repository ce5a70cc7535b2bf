# Tariffs: the price of energy at a moment, in integer minor units per kWh.
#
# A tariff is a dict (stored as JSON in the settings):
#   {"version": 3, "activate": <UTC seconds, 0 = now>, "kind": "flat"|"tou"|"block",
#    "standing_per_day": <minor units>,
#    flat:  "price": P
#    tou:   "weekday": [[minute_of_day, P], ...], "weekend": [[minute, P], ...]
#           (sorted, the first at minute 0; weekend defaults to weekday)
#    block: "tiers": [[from_kwh, P], ...]  (from 0 upwards, in the billing month)}
# Times of day are local: UTC plus the meter's tz_offset_min.
#
# Checking a tariff that arrives is firmware/tariffcheck.py (loaded then).
#
# Money is carried exactly: the fraction of a minor unit left by each debit is
# kept as `rem` (in 1/imp_per_kwh minor units), so any number of pulses bills
# exactly what the total energy costs.

from firmware.calendar import DAY, weekday

def flat_cost(pulses, price_per_kwh, imp_per_kwh, rem):
    """Debit for `pulses` at one price; returns (debit, new_rem)."""
    num = rem + pulses * price_per_kwh
    return num // imp_per_kwh, num % imp_per_kwh


def _step_price(steps, x):
    p = steps[0][1]
    for start, price in steps:
        if start <= x:
            p = price
    return p


def price(t, local_s, month_pulses, imp):
    """Price per kWh of the next pulse: at local time local_s, with
    month_pulses already counted in the billing month."""
    kind = t["kind"]
    if kind == "flat":
        return t["price"]
    if kind == "tou":
        days, secs = divmod(local_s, DAY)
        steps = t["weekend"] if weekday(days) >= 5 else t["weekday"]
        return _step_price(steps, secs // 60)
    # block: the tier holding the energy counted so far this month
    return _step_price(t["tiers"], month_pulses // imp)


def next_change(t, local_s):
    """Seconds from local_s to the next switch of t's price within the local
    day (a TOU step), or None: nothing before midnight."""
    if t["kind"] != "tou":
        return None
    days, secs = divmod(local_s, DAY)
    for start, _ in t["weekend"] if weekday(days) >= 5 else t["weekday"]:
        if start * 60 > secs:
            return start * 60 - secs
    return None


def steady(t, month_pulses, imp):
    """How many pulses from month_pulses on keep price()'s answer at one
    local time (a block tariff changes at its next tier); None: all."""
    if t["kind"] != "block":
        return None
    for start, _ in t["tiers"]:
        if start * imp > month_pulses:
            return start * imp - month_pulses
    return None


def highest(t):
    """The highest price t can ask (a bound on what one pulse costs)."""
    kind = t["kind"]
    if kind == "flat":
        return t["price"]
    steps = t["tiers"] if kind == "block" else t["weekday"] + t["weekend"]
    return max(p for _, p in steps)


def in_force(tariffs, wall_s):
    """The tariff in force at wall_s: the latest activation not after it
    (the higher version on a tie); None if none has started."""
    best = None
    for t in tariffs:
        if t["activate"] <= wall_s and (
                best is None or (t["activate"], t["version"]) > (best["activate"], best["version"])):
            best = t
    return best


def pending(tariffs, wall_s):
    return sorted([t for t in tariffs if t["activate"] > wall_s],
                  key=lambda t: (t["activate"], t["version"]))
