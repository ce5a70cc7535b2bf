# Price of energy. Money is integer minor units; the fraction of a minor unit
# left over by each debit is carried as `rem` (in 1/imp_per_kwh minor units)
# so that any number of pulses bills exactly what the total energy costs.


def flat_cost(pulses, price_per_kwh, imp_per_kwh, rem):
    """Debit for `pulses` at a flat price; returns (debit, new_rem)."""
    num = rem + pulses * price_per_kwh
    return num // imp_per_kwh, num % imp_per_kwh
