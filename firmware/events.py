# Events and alarms, a part of MeterApp. Every event is a dict (the shell's
# sink prints or forwards it as it is) and one record in the flash event log
# (firmware/eventlog.py). Adding an event kind: append its name to
# eventlog.KINDS (codes on flash keep their meaning) and emit it; a kind
# whose dict does not carry `value`/`detail` gets a row in record().

from firmware.eventlog import EventLog


def record(ev):
    """The (value, detail) an event keeps in its 38-byte flash record."""
    k = ev["event"]
    if k == "relay":
        return 0, ev["relay"] + ":" + ev["reason"]
    if k == "topup" or k == "topup_rejected":
        return ev["amount"], ev["ref"]
    return ev.get("value", ev.get("credit", 0)), ev.get("detail", "")


class Events:
    def __init__(self, bdev, settings, clock, sink):
        """sink(event, now_ms) gets every event after it is logged."""
        self.log = EventLog(bdev)
        self.settings = settings
        self.clock = clock
        self.sink = sink

    def emit(self, ev, now_ms):
        """Log an event in flash, then hand it on."""
        value, detail = record(ev)
        try:
            self.log.append(ev["event"], self.clock.now(now_ms), value, detail)
        except OSError as e:
            self.alarm("flash", now_ms, str(e))
        self.sink(ev, now_ms)

    @property
    def alarms(self):
        return self.settings.get("alarms")

    def alarm(self, name, now_ms, detail=""):
        """Raise an alarm; it stays (across reboots) until a technician clears it."""
        if name not in self.alarms:
            try:
                self.settings.save({"alarms": self.alarms + [name]})
            except OSError:
                pass   # the alarm still reaches the sink below
        self.sink({"event": "error", "detail": ("%s %s" % (name, detail)).strip()}, now_ms)

    def clear_alarms(self, now_ms):
        cleared = ",".join(self.alarms) or "none"
        if self.alarms:
            self.settings.save({"alarms": []})
        self.emit({"event": "alarms_cleared", "detail": cleared}, now_ms)
        return cleared
