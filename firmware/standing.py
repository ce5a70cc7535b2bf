# The billing clock's calendar: what a day or month boundary and a time sync
# cost (standing charges, the block tariff's monthly reset), written to the
# ledger. Part of MeterApp; it reads the app's clock, settings and tariffs.

from firmware.calendar import DAY, month_key

MAX_GAP_DAYS = 3660
# A billing clock before 2020 has never known the true time: the meter ran
# from 1970 on its own. Its first sync sets the time without billing the gap.
KNOWN_TIME_S = 1577836800


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
        a.ledger.note_time(a.clock.now(now_ms), True)
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
