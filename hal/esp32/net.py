# WiFi station with reconnect, and wall time from NTP into the RTC.

import time

import network
import ntptime

EPOCH_OFFSET = 946684800 if time.gmtime(0)[0] == 2000 else 0   # ports differ


class Wifi:
    def __init__(self, ssid, password, retry_ms=10000):
        self.wlan = network.WLAN(network.STA_IF)
        self.wlan.active(True)
        self.ssid, self.password = ssid, password
        self.retry_ms = retry_ms
        self._last_try = None

    def isconnected(self):
        """Connected now; if not, (re)start a connection attempt at most every
        retry_ms. Never waits for the association."""
        if self.wlan.isconnected():
            return True
        now = time.ticks_ms()
        if self.ssid and (self._last_try is None
                          or time.ticks_diff(now, self._last_try) > self.retry_ms):
            self._last_try = now
            try:
                self.wlan.connect(self.ssid, self.password)
            except OSError:
                pass
        return False


def ntp_time(host="pool.ntp.org"):
    """UTC seconds since 1970 from NTP (sets the RTC too), or None."""
    try:
        ntptime.host = host
        ntptime.settime()
    except (OSError, OverflowError, IndexError):
        return None
    return time.time() + EPOCH_OFFSET
