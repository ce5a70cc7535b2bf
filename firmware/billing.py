# Billing, parts of MeterApp: pulses into money at the tariff in force
# (firmware/tariff.py), the tariffs the meter holds, the pulse register and
# power reading (firmware/meter.py); and the billing clock's calendar: what a
# day or month boundary and a time sync cost (standing charges, the block
# tariff's monthly reset), written to the ledger.

from firmware import tariff, transient
from firmware.calendar import DAY, month_key
from firmware.meter import Meter

MAX_GAP_DAYS = 3660
# A billing clock before 2020 has never known the true time: the meter ran
# from 1970 on its own. Its first sync sets the time without billing the gap.
KNOWN_TIME_S = 1577836800


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
            left = n
            while left:
                # a run of pulses at one price (a block tariff's tier may end it)
                if lg.payg_off:
                    p, k = 0, left
                else:
                    p = tariff.price(tf, local, lg.month_pulses, lg.imp)
                    k = tariff.steady(tf, lg.month_pulses, lg.imp) or left
                    if k > left:
                        k = left
                if p != lg.price:
                    lg.set_price(p)
                lg.consume(k)
                left -= k
        lg.note_time(t, a.clock.synced)
        return n

    def add_tariff(self, t, now_ms):
        """Install a tariff (checked); it takes over at its activation time.
        Its version must be above every version the meter has."""
        a = self.app
        t = transient.call("firmware.tariffcheck", "validate", t)
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


class BillingCalendar:
    def __init__(self, app):
        self.app = app
        self.day = None            # the local day last seen; None: look again

    def synced(self, wall_s, now_ms):
        """A time source says it is wall_s. Forward: taken, the gap is billed
        by standing charge only. Back by more than the tolerance: logged, not
        followed, nothing billed twice. The first true time a meter ever
        gets bills nothing for the decades since 1970: its standing charges
        start over from that day. Returns how far the clock moved (s)."""
        a = self.app
        first = a.clock.now(now_ms) < KNOWN_TIME_S <= wall_s
        delta = a.clock.sync(wall_s, now_ms)
        tol = a.settings.get("clock_tolerance_s")
        if first:
            a.ledger.standing_charge(a.local(wall_s) // DAY, 0)
            a.emit({"event": "clock", "value": delta, "detail": "first sync"}, now_ms)
        elif delta < -tol:
            a.emit({"event": "clock_back", "value": delta}, now_ms)
        elif delta > tol:
            a.emit({"event": "clock", "value": delta}, now_ms)
        a.ledger.note_time(a.clock.now(now_ms), True, save=True)
        self.check(now_ms)
        return delta

    def check(self, now_ms):
        """Day and month boundaries of the billing clock: standing charges and
        the block tariff's monthly reset."""
        a = self.app
        lg = a.ledger
        day = a.local(a.clock.now(now_ms)) // DAY
        if day == self.day:
            return
        self.day = day
        if lg.standing_day == 0:
            lg.standing_charge(day, 0)    # a new meter starts charging tomorrow
        elif lg.standing_day < day:
            first = lg.standing_day + 1
            if day - first > MAX_GAP_DAYS:
                first = day - MAX_GAP_DAYS
            amount = 0
            for d in range(first, day + 1):
                amount += a.tariff_now((d * DAY) - a.settings.get("tz_offset_min") * 60
                                       )["standing_per_day"]
            lg.standing_charge(day, amount)
            if amount:
                a.emit({"event": "standing_charge", "value": amount,
                        "detail": "%d days" % (day - first + 1)}, now_ms)
        mk = month_key(day)
        if lg.month_key != mk:
            lg.new_month(mk)
