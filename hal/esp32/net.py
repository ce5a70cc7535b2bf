# WiFi station, name lookups and NTP time on an ESP32.
#
# Nothing here may block the meter's loop for long (an 8 s watchdog watches
# it): the port reconnects the station by itself after a drop, so connect() is
# called once; getaddrinfo has no timeout on a board (lwIP retries each DNS
# server for seconds), so names are looked up in a short-lived thread and the
# answer is kept; NTP sends its request and picks the answer up in a later
# turn (micropython-lib's ntptime waits for it, up to its timeout, inside the
# loop: a silent server held the relay decision that long).

import os
import socket
import struct
import time

import network

NTP_RETRY_MS = 30000            # until the first answer
NTP_RESYNC_MS = 6 * 3600000     # then: a crystal drifts 1-2 s a day
NTP_TIMEOUT_MS = 2000           # an answer later than this is not waited for
NTP_UNIX = 2208988800           # NTP seconds (from 1900) at the Unix epoch
EAGAIN = 11                     # the same number on lwIP and Linux


class Resolver:
    """getaddrinfo in the background: lookup(host, port) -> address, None
    while it runs, or OSError when the name did not resolve."""

    def __init__(self, sock_mod):
        self._m = sock_mod
        self.done = {}      # (host, port) -> address or OSError
        self.running = set()

    @staticmethod
    def literal(host):
        parts = host.split(".")
        return len(parts) == 4 and all(p.isdigit() for p in parts)

    def _work(self, key):
        try:
            self.done[key] = self._m.getaddrinfo(key[0], key[1])[0][-1]
        except OSError as e:
            self.done[key] = e
        self.running.discard(key)

    def lookup(self, host, port):
        key = (host, port)
        if key in self.done:
            r = self.done.pop(key)
            if isinstance(r, OSError):
                raise r
            return r
        if self.literal(host):
            return self._m.getaddrinfo(host, port)[0][-1]   # no network involved
        if key not in self.running:
            import _thread
            self.running.add(key)
            _thread.start_new_thread(self._work, (key,))
        return None


class Wifi:
    def __init__(self, ssid, password, sock_mod=None):
        self.wlan = network.WLAN(network.STA_IF)
        self.wlan.active(True)
        self.ssid, self.password = ssid, password
        self.started = False
        if sock_mod is None:
            import socket as sock_mod
        self.resolver = Resolver(sock_mod)
        self.connect()

    def connect(self):
        """Start associating, once: the port retries by itself after a drop,
        and a second connect() while associating would start it over."""
        if self.ssid and not self.started:
            try:
                self.wlan.connect(self.ssid, self.password)
                self.started = True
            except OSError:
                pass

    def configure(self, ssid, password):
        """Other credentials (the `wifi_ssid`/`wifi_pass` settings): leave the
        network joined with the old ones and join the new one."""
        if (ssid, password) == (self.ssid, self.password):
            return
        if self.started:
            try:
                self.wlan.disconnect()
            except OSError:
                pass
        self.ssid, self.password, self.started = ssid, password, False
        self.resolver.done.clear()       # names may resolve otherwise there
        self.connect()

    def isconnected(self):
        if not self.started:
            self.connect()
        return self.wlan.isconnected()

    def resolve(self, host, port):
        return self.resolver.lookup(host, port)


class NtpTime:
    """The meter's time source: the shell polls it every loop turn; it asks an
    NTP server when one is due (every 30 s until the first answer, then every
    6 h) and the WiFi is up, and returns the UTC seconds of an answer, else
    None. A poll never waits: the request goes out on a non-blocking UDP
    socket and the answer is read when it has come. Only an answer to this
    request counts (its origin timestamp is the request's random one)."""

    def __init__(self, wifi, host="pool.ntp.org", port=123):
        self.wifi = wifi
        self.host = host
        self.port = port
        self.due = None        # ticks_ms of the next request (None: now)
        self.addr = None       # the server's address, looked up once
        self.synced = False
        self.last_error = ""
        self.sock = None       # a request in flight
        self.sent = time.ticks_ms()    # when it went out
        self.nonce = b""

    def poll(self):
        now = time.ticks_ms()
        if self.sock is not None:
            return self._answer(now)
        if self.due is not None and time.ticks_diff(now, self.due) < 0:
            return None
        if not self.wifi.isconnected():
            return None
        if self.addr is None:
            try:
                self.addr = self.wifi.resolve(self.host, self.port)
            except OSError as e:
                return self._failed(now, e)
            if self.addr is None:
                return None       # still looking the name up
        self.nonce = os.urandom(8)
        try:
            s = self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setblocking(False)
            # version 4, client mode; the transmit timestamp comes back as origin
            s.sendto(b"\x23" + bytes(39) + self.nonce, self.addr)
        except OSError as e:
            return self._failed(now, e)
        self.sent = now
        return None

    def _answer(self, now):
        s = self.sock
        if s is None:
            return None
        try:
            b = s.recv(64)
        except OSError as e:
            if e.args[0] != EAGAIN:
                return self._failed(now, e)
            if time.ticks_diff(now, self.sent) > NTP_TIMEOUT_MS:
                return self._failed(now, OSError(110, "no answer"))
            return None
        t = parse_answer(b, self.nonce)
        if t is None:
            return None       # not an answer to this request: wait on
        self._close()
        self.synced = True
        self.due = time.ticks_add(now, NTP_RESYNC_MS)
        self.last_error = ""
        set_rtc(t)
        return t

    def _close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def _failed(self, now, e):
        self._close()
        self.addr = None      # ask the pool for another server next time
        self.last_error = repr(e)
        self.due = time.ticks_add(now, NTP_RETRY_MS)
        return None


def parse_answer(b, nonce):
    """UTC seconds in a server's answer to the request sent with nonce, or
    None (short, not a server, unsynchronised, or answering another request).
    Seconds below 2**31 are read as the next NTP era (2036 to 2104)."""
    if len(b) < 48 or b[0] & 7 != 4 or not 1 <= b[1] <= 15 or b[24:32] != nonce:
        return None
    secs = struct.unpack(">I", b[40:44])[0]
    if secs < 0x80000000:
        secs += 1 << 32       # NTP era 1: from February 2036, within a meter's life
    return secs - NTP_UNIX


def set_rtc(utc_s):
    """The board's own clock to UTC: mbedtls checks a TLS certificate's dates
    against it (ports/esp32/main.c sets gettimeofday as its time), and a
    board boots believing it is 2000, before every certificate's start."""
    import machine
    from firmware.calendar import DAY, civil_from_days, weekday
    days, s = divmod(utc_s, DAY)
    y, m, d = civil_from_days(days)
    machine.RTC().datetime((y, m, d, weekday(days), s // 3600, s // 60 % 60, s % 60, 0))
