# The event log: fixed-size records in a firmware.journal on its own partition.
# When the ring is full the oldest sector is erased, so the log keeps the most
# recent events (about 107 per 4 KiB sector) and never wears one spot.
#
# record 0xFC: u8 tag, u8 kind, u32 seq, u32 t (seconds), i64 value (exact: a
#              top-up of 4294967295, any credit), 16 B detail, u32 CRC-32 (38 B);
#              the ring programs the tag last, as its commit mark (firmware/ring.py)
# record 'W': the same, written tag first by earlier releases; read only
# record 'V': the first format, read, no longer written: i32 value (clipped),
#             u16 check (low half of CRC-32) (32 B)

import struct

from firmware.journal import Journal, intact, seal

MAGIC = b"PPEV"
TAG = 0xFC
TAG_W = 0x57          # 'W'
TAG_V1 = 0x56         # 'V'
REC_LEN = 38
V1_LEN = 32
DETAIL_LEN = 16
KINDS = ("boot", "relay", "topup", "topup_rejected", "low_credit", "config",
         "login", "login_failed", "lockout", "logout", "alarms_cleared", "selftest",
         "reboot", "factory_reset", "repl", "error", "meter_constant",
         # appended: codes on flash must keep their meaning
         "credit_state", "relay_state", "standing_charge", "clock", "clock_back",
         "tariff", "emergency", "button", "trip", "trip_reset", "cmd_rejected", "token",
         "token_rejected", "mqtt_error", "vend_cancelled", "events_lost", "cmd_flood",
         "ota")


def _ascii(text):
    # Details are shown on a serial console: printable ASCII only.
    return bytes(c if 32 <= c < 127 else 63 for c in str(text).encode())[:DETAIL_LEN]


def encode(kind, seq, t, value, detail):
    d = _ascii(detail)
    return seal(struct.pack("<BBIIq", TAG, kind, seq, t & 0xFFFFFFFF, value) + d
                + b"\x00" * (DETAIL_LEN - len(d)))


def parse(buf, off):
    if off >= len(buf):
        return None
    tag = buf[off]
    if tag == TAG or tag == TAG_W:
        nxt = off + REC_LEN
        if not intact(buf, off, REC_LEN):
            return None
        _, kind, seq, t, value = struct.unpack_from("<BBIIq", buf, off)
        d0 = off + 18
    elif tag == TAG_V1:
        nxt = off + V1_LEN
        if not intact(buf, off, V1_LEN, 2):
            return None
        _, kind, seq, t, value = struct.unpack_from("<BBIIi", buf, off)
        d0 = off + 14
    else:
        return None
    detail = bytes(buf[d0:d0 + DETAIL_LEN]).rstrip(b"\x00").decode()
    return TAG, (seq, t, kind, value, detail), nxt


def kind_name(k):
    return KINDS[k] if k < len(KINDS) else "kind%d" % k


class EventLog:
    def __init__(self, bdev):
        self.journal = Journal(bdev, MAGIC, "event log", REC_LEN, parse)
        self.seq = 0
        self.journal.boot(self._see)

    def _see(self, tag, v, first):
        if v[0] > self.seq:
            self.seq = v[0]
        return True

    def append(self, kind, t, value=0, detail=""):
        """Log one event; returns its sequence number."""
        k = KINDS.index(kind)
        if not -(1 << 63) <= value < (1 << 63):
            value = -(1 << 63) if value < 0 else (1 << 63) - 1
        self.journal.put(encode(k, self.seq + 1, t, value, detail))
        self.seq += 1
        return self.seq

    def after(self, seq, n):
        """Up to n events with a sequence number above seq, oldest first."""
        return self.journal.after(lambda tag, v: v[0] > seq, n)

    def last(self, n):
        """The newest n events, oldest first: (seq, t, kind, value, detail)."""
        out, j = [], self.journal
        for _, sec in j.heads():
            if len(out) >= n:
                break
            out = [v for _, _, v in j.records(sec, parse)] + out
        out.sort()
        return out[-n:] if n > 0 else []


# Events and alarms, a part of MeterApp. Every event is a dict (the shell's
# sink prints or forwards it as it is) and one record in this log. Adding an
# event kind: append its name to KINDS (codes on flash keep their meaning) and
# emit it; a kind whose dict does not carry `value`/`detail` gets a branch in
# record().

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
