# MicroPython test harness: one simulated meter in virtual time, with every
# event captured. Used by tests/test_tariffs.py and friends.

from firmware.calendar import parse_iso
from hal.sim.run import Output, Sim


class Capture(Output):
    def __init__(self):
        Output.__init__(self, True, False)
        self.events = []

    def event(self, ev, t_ms, always=False):
        d = dict(ev)
        d["t"] = t_ms
        self.events.append(d)

    def status(self, st, t_ms, extra=None):
        pass

    def kinds(self, kind):
        return [e for e in self.events if e["event"] == kind]


def world(start=None, **cfg):
    """A booted meter. start: ISO time the time source gives (None: no source)."""
    cfg.setdefault("report_ms", 0)
    if start:
        cfg["start"] = parse_iso(start)
    out = Capture()
    sim = Sim(cfg, out)
    sim.boot()
    return sim, out


def hours(h):
    return int(h * 3600000)
