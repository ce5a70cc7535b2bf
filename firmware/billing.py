# Billing, a part of MeterApp: pulses into money at the tariff in force
# (firmware/tariff.py), the tariffs the meter holds, and the pulse register
# and power reading (firmware/meter.py). Day and month boundaries are
# firmware/standing.py's.

from firmware import tariff
from firmware.meter import Meter


class Billing:
    def __init__(self, app, now_ms):
        self.app = app
        if not self.tariffs():
            # a new meter bills its board's price until a tariff comes
            app.settings.save({"tariffs": [{"version": 1, "activate": 0, "kind": "flat",
                                            "price": app.ledger.price, "standing_per_day": 0}]})
        self.meter = Meter(app.ledger.imp)
        self.meter.update(app.hal.pulses.count(), now_ms)

    def local(self, wall_s):
        return wall_s + self.app.settings.get("tz_offset_min") * 60

    def tariffs(self):
        return self.app.settings.get("tariffs")

    def tariff_now(self, wall_s):
        return tariff.in_force(self.tariffs(), wall_s) or self.tariffs()[0]

    def price_now(self, now_ms):
        """The price per kWh the next pulse would be billed at."""
        a = self.app
        t = a.clock.now(now_ms)
        return tariff.price(self.tariff_now(t), self.local(t), a.ledger.month_pulses,
                            a.ledger.imp)

    def bill(self, now_ms):
        """Bill the pulses counted since the last call; returns how many."""
        a = self.app
        lg = a.ledger
        t = a.clock.now(now_ms)
        n = self.meter.update(a.hal.pulses.count(), now_ms)
        if n:
            tf = self.tariff_now(t)
            local = self.local(t)
            for _ in range(n):
                p = 0 if lg.payg_off else tariff.price(tf, local, lg.month_pulses, lg.imp)
                if p != lg.price:
                    lg.set_price(p)
                lg.consume(1)
        lg.note_time(t, a.clock.synced)
        return n

    def add_tariff(self, t, now_ms):
        """Install a tariff (checked); it takes over at its activation time.
        Its version must be above every version the meter has."""
        a = self.app
        t = tariff.validate(t)
        have = self.tariffs()
        if have and t["version"] <= max(x["version"] for x in have):
            raise ValueError("tariff version must be above %d"
                             % max(x["version"] for x in have))
        wall = a.clock.now(now_ms)
        keep = [x for x in have + [t] if x["activate"] > wall]
        cur = tariff.in_force(have + [t], wall)
        if cur is not None:
            keep.insert(0, cur)
        a.settings.save({"tariffs": keep})
        a.emit({"event": "tariff", "value": t["version"], "detail": t["kind"]}, now_ms)
        a.step(now_ms)
        return t

    def set_meter_constant(self, imp, now_ms):
        a = self.app
        a.ledger.set_meter_constant(imp)
        self.meter = Meter(imp)
        self.meter.update(a.hal.pulses.count(), now_ms)
        a.emit({"event": "meter_constant", "value": imp}, now_ms)
