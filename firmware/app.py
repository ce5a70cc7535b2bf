# Wiring: one metering engine built from a board description and its HAL.
# The shell (a device main loop or the simulator) calls step(now_ms) whenever
# pulses may have arrived; nothing here reads a clock or a pin by itself.

from firmware.ledger import Ledger, Rejected
from firmware.meter import Meter, mwh
from firmware.policy import supply_allowed
from firmware.relay import RelayController


class MeterApp:
    def __init__(self, board, hal, emit, now_ms=0, new_credit=None, new_price=None):
        """hal: object with .flash (block device), .pulses (.count()) and
        .relay (.set(closed)). emit(event_dict, now_ms) receives events."""
        self.hal = hal
        self.emit = emit
        self.ledger = Ledger(
            hal.flash, imp_per_kwh=board.IMP_PER_KWH,
            price_per_kwh=board.PRICE_PER_KWH if new_price is None else new_price,
            initial_credit=board.INITIAL_CREDIT if new_credit is None else new_credit,
            loss_bound_mwh=board.LOSS_BOUND_MWH)
        self.meter = Meter(self.ledger.imp)
        self.meter.update(hal.pulses.count(), now_ms)
        self.relay = RelayController(hal.relay, emit)
        emit({"event": "boot", "new": self.ledger.created,
              "credit": self.ledger.credit, "pulses": self.ledger.pulses}, now_ms)
        # The relay state at boot comes from the ledger, never from a default.
        self._decide("boot", now_ms)

    def _decide(self, reason, now_ms):
        if self.relay.apply(supply_allowed(self.ledger.credit), reason, now_ms):
            self.meter.forget_power()

    def step(self, now_ms):
        n = self.meter.update(self.hal.pulses.count(), now_ms)
        if n:
            self.ledger.consume(n)
            self._decide("credit", now_ms)
        return n

    def topup(self, ref, amount, now_ms):
        try:
            credit = self.ledger.topup(ref, amount)
        except Rejected as e:
            self.emit({"event": "topup_rejected", "ref": ref, "amount": amount,
                       "reason": str(e)}, now_ms)
            raise
        self.emit({"event": "topup", "ref": ref, "amount": amount,
                   "credit": credit}, now_ms)
        self._decide("topup", now_ms)
        return credit

    def status(self, now_ms):
        lg = self.ledger
        return {"energy_mwh": mwh(lg.pulses, lg.imp), "credit": lg.credit,
                "relay": "closed" if self.relay.closed else "open",
                "power_w": self.meter.power_w(now_ms) if self.relay.closed else 0,
                "pulses": lg.pulses}
