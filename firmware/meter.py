# Pulses from the energy-metering IC -> energy and a power estimate.
# The core never reads a pin or a clock: the shell passes the counter's
# cumulative value and the time it was read.

KWH_WMS = 3600000000  # 1 kWh in watt-milliseconds


def mwh(pulses, imp_per_kwh):
    """Energy of `pulses` in whole milliwatt-hours (floor)."""
    return pulses * 1000000 // imp_per_kwh


def wh_text(pulses, imp_per_kwh):
    """Energy as a decimal Wh string with 3 places, computed from integers
    (the ESP32 port's floats are single precision)."""
    m = mwh(pulses, imp_per_kwh)
    return "%d.%03d" % (m // 1000, m % 1000)


class Meter:
    def __init__(self, imp_per_kwh):
        self.imp = imp_per_kwh
        self._count = None      # last counter value seen
        self._t_pulse = None    # time the latest pulse was seen
        self._interval = None   # ms per pulse over the latest observation
        self._n = 0             # pulses in that observation

    def update(self, count, now_ms):
        """Feed the counter's cumulative value; returns the new pulses."""
        if self._count is None:
            self._count = count
            return 0
        n = count - self._count
        if n < 0:
            raise ValueError("pulse counter went backwards")
        self._count = count
        if n:
            if self._t_pulse is not None:
                self._interval = (now_ms - self._t_pulse) // n or 1
            self._t_pulse = now_ms
        return n

    def forget_power(self):
        """The supply was switched: intervals from before say nothing now."""
        self._t_pulse = None
        self._interval = None

    def power_w(self, now_ms):
        """Power from the interval between pulses. Once the next pulse is
        overdue the estimate decays: power cannot exceed what would have
        produced a pulse by now."""
        if self._interval is None:
            return 0
        interval = self._interval
        since = now_ms - self._t_pulse
        if since > interval:
            interval = since
        return KWH_WMS // (self.imp * interval)
