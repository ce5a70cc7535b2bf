# Simulated energy-metering IC: turns a load profile into pulses at the meter
# constant, counted like a hardware pulse counter (a cumulative count the
# firmware polls). No energy flows while the relay is open.
#
# Energy is integrated exactly in integers: one pulse is due each time the sum
# of watts * milliseconds * imp_per_kwh reaches 3.6e9 (1 kWh = 3.6e9 W*ms).

from hal.sim.rng import Rng

KWH_WMS = 3600000000  # 1 kWh in watt-milliseconds
DAY_MS = 86400000


class LoadProfile:
    """Watts as a step function of time. `rows` is a list of (t_ms, watts)
    starting at 0; with `daily` the steps repeat every day."""

    def __init__(self, rows, daily=False):
        if not rows or rows[0][0] != 0:
            raise ValueError("load profile must start at time 0")
        for i in range(1, len(rows)):
            if rows[i][0] <= rows[i - 1][0]:
                raise ValueError("load profile times must increase")
        for _, w in rows:
            if w < 0:
                raise ValueError("load profile watts must not be negative")
        self.rows = rows
        self.daily = daily

    @classmethod
    def constant(cls, watts):
        return cls([(0, watts)])

    def at(self, t_ms):
        """(watts, end_ms) of the step that contains t_ms."""
        base = 0
        if self.daily:
            base = t_ms - t_ms % DAY_MS
            t_ms -= base
        rows = self.rows
        i = len(rows) - 1
        while rows[i][0] > t_ms:
            i -= 1
        if i + 1 < len(rows):
            end = rows[i + 1][0]
        elif self.daily:
            end = DAY_MS
        else:
            end = None
        return rows[i][1], (None if end is None else base + end)


def parse_profile_csv(text):
    """time,watts per line; time in seconds or HH:MM[:SS] of the day. A profile
    whose times all fall within one day repeats daily."""
    rows = []
    for n, line in enumerate(text.splitlines()):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 2:
            raise ValueError("line %d: expected time,watts" % (n + 1))
        if n == 0 and not parts[1].replace(".", "").isdigit():
            continue  # header
        t, w = parts
        try:
            if ":" in t:
                hms = [int(x) for x in t.split(":")]
                while len(hms) < 3:
                    hms.append(0)
                secs = hms[0] * 3600 + hms[1] * 60 + hms[2]
            else:
                secs = int(t)
            watts = int(float(w))
        except ValueError:
            raise ValueError("line %d: time must be seconds or HH:MM[:SS] and watts a "
                             "number, got %r" % (n + 1, line))
        if watts < 0 or secs < 0:
            raise ValueError("line %d: negative time or watts" % (n + 1))
        rows.append((secs * 1000, watts))
    if not rows:
        raise ValueError("load profile is empty")
    if rows[0][0] != 0:
        rows.insert(0, (0, 0))
    return LoadProfile(rows, daily=rows[-1][0] < DAY_MS)


class SimPulseSource:
    def __init__(self, profile, imp_per_kwh, clock, relay, seed=0, noise_pct=0,
                 start_ms=0):
        self.profile = profile
        self.imp = imp_per_kwh
        self.clock = clock
        self.relay = relay
        self.noise = noise_pct
        self._rng = Rng(seed)
        self._minute = -1
        self._factor = 100
        self.t = start_ms      # integrated up to here
        self.acc = 0           # watt-ms * imp since the last pulse
        self.pulses = 0        # cumulative, like a hardware counter
        self.wms = 0           # true energy delivered, watt-milliseconds

    def _load(self, t):
        """(watts, step_end_ms) at time t, noise applied per minute."""
        w, end = self.profile.at(t)
        if self.noise:
            minute = t // 60000
            if minute != self._minute:
                self._minute = minute
                self._factor = 100 - self.noise + self._rng.below(2 * self.noise + 1)
            w = w * self._factor // 100
            m_end = (minute + 1) * 60000
            if end is None or m_end < end:
                end = m_end
        return w, end

    def _advance(self, until):
        thresh = KWH_WMS
        while self.t < until:
            w, end = self._load(self.t)
            stop = until if end is None or end > until else end
            if self.relay.closed and w:
                dt = stop - self.t
                self.acc += w * dt * self.imp
                self.wms += w * dt
                if self.acc >= thresh:
                    n = self.acc // thresh
                    self.pulses += n
                    self.acc -= n * thresh
            self.t = stop

    def count(self):
        self._advance(self.clock.now_ms())
        return self.pulses

    def next_pulse_ms(self, horizon_ms, most=1):
        """Time of the next pulse if the relay stays as it is, or None if none
        comes before horizon_ms. With most > 1: the time of the most-th pulse
        from now, or of the last one before horizon_ms if fewer come (one at
        horizon_ms is the horizon's own: a step there bills it in its minute)."""
        self._advance(self.clock.now_ms())
        if not self.relay.closed:
            return None
        thresh = KWH_WMS
        need = thresh - self.acc     # energy until the next pulse
        t = self.t
        last = None
        limit = horizon_ms - 1
        saved = (self._minute, self._factor, self._rng.s)
        try:
            while t < limit:
                w, end = self._load(t)
                stop = limit if end is None or end > limit else end
                if w:
                    rate = w * self.imp
                    e = (stop - t) * rate
                    if e >= need:
                        # pulse j of this step comes at the first ms where
                        # need + (j - 1) * thresh has accumulated
                        q = (e - need) // thresh + 1
                        j = most if q >= most else q
                        last = t - (-(need + (j - 1) * thresh) // rate)
                        if q >= most:
                            return last
                        most -= q
                        need += q * thresh
                    need -= e
                t = stop
            return last
        finally:
            # Looking ahead must not consume the noise stream.
            self._minute, self._factor, self._rng.s = saved
