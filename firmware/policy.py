# Credit policy: what the relay should do given the credit. This first rule is
# the plain prepaid one; low-credit, emergency and friendly periods come later.


def supply_allowed(credit):
    """True when the supply may be on: credit left (> 0)."""
    return credit > 0
