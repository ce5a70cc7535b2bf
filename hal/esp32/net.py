# WiFi station, name lookups and NTP time on an ESP32.
#
# Nothing here may block the meter's loop for long (an 8 s watchdog watches
# it): the port reconnects the station by itself after a drop, so connect() is
# called once; getaddrinfo has no timeout on a board (lwIP retries each DNS
# server for seconds), so names are looked up in a short-lived thread and the
# answer is kept; NTP asks an address, never a name, with a short timeout.

import time

import network
import ntptime

EPOCH_OFFSET = 946684800 if time.gmtime(0)[0] == 2000 else 0   # ports differ
NTP_RETRY_MS = 30000            # until the first answer
NTP_RESYNC_MS = 6 * 3600000     # then: a crystal drifts 1-2 s a day
NTP_TIMEOUT_S = 0.5


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

    def isconnected(self):
        if not self.started:
            self.connect()
        return self.wlan.isconnected()

    def resolve(self, host, port):
        return self.resolver.lookup(host, port)


class NtpTime:
    """The meter's time source: the shell polls it every loop turn; it asks an
    NTP server when one is due (every 30 s until the first answer, then every
    6 h) and the WiFi is up, and returns the UTC seconds it got, else None."""

    def __init__(self, wifi, host="pool.ntp.org"):
        self.wifi = wifi
        self.host = host
        self.due = None        # ticks_ms of the next request (None: now)
        self.addr = None       # the server's address, looked up once
        self.synced = False
        self.last_error = ""

    def poll(self):
        now = time.ticks_ms()
        if self.due is not None and time.ticks_diff(now, self.due) < 0:
            return None
        if not self.wifi.isconnected():
            return None
        if self.addr is None:
            try:
                self.addr = self.wifi.resolve(self.host, 123)
            except OSError as e:
                return self._failed(now, e)
            if self.addr is None:
                return None       # still looking the name up
        ntptime.host = _ip(self.addr)
        setattr(ntptime, "timeout", NTP_TIMEOUT_S)   # a float works; the stubs say int
        try:
            t = ntptime.time()
        except (OSError, OverflowError, IndexError, ValueError) as e:
            self.addr = None      # ask the pool for another server next time
            return self._failed(now, e)
        self.synced = True
        self.due = time.ticks_add(now, NTP_RESYNC_MS)
        return t + EPOCH_OFFSET

    def _failed(self, now, e):
        self.last_error = repr(e)
        self.due = time.ticks_add(now, NTP_RETRY_MS)
        return None


def _ip(addr):
    """The dotted address in a sockaddr (a bytes sockaddr_in on the unix
    port, a (host, port) tuple on the ESP32)."""
    if isinstance(addr, tuple):
        return addr[0]
    return "%d.%d.%d.%d" % (addr[4], addr[5], addr[6], addr[7])
