# Helpers for the ledger's MicroPython tests (tests/mp/ledger/).

from firmware.ledger import Ledger, LedgerFault
from hal.sim.flash import SimFlash


def flash(blocks=16, bs=4096, **kw):
    return SimFlash(None, bs, blocks, **kw)


def fault(f):
    """Why a ledger on f refuses to open, or "opened"."""
    try:
        Ledger(f)
        return "opened"
    except LedgerFault as e:
        return str(e)


def view(lg):
    return {"credit": lg.credit, "pulses": lg.pulses, "billed": lg.billed,
            "topups": lg.topups, "rem": lg.rem, "price": lg.price, "imp": lg.imp,
            "count": lg.topup_count, "created": lg.created}
