# ntptime as micropython-lib has it (micropython/net/ntptime/ntptime.py):
# module attributes host and timeout; time() asks the server (UDP, one try,
# raises OSError when there is no answer) and returns seconds since the port's
# epoch; settime() puts that into the RTC. Here the answer is the host's clock
# plus the world's "ntp_offset_s", and only while the WiFi is associated.

import utime

import _world
import network

host = "pool.ntp.org"
timeout = 1
calls = [0]


def time():
    calls[0] += 1
    _world.report("ntp_calls", calls[0])
    if not network.WLAN(network.STA_IF).isconnected() or _world.get("ntp", {}).get("down"):
        utime.sleep_ms(int(timeout * 1000))      # the request goes unanswered
        raise OSError(110)                       # ETIMEDOUT
    # the host's clock, in the port's 2000 epoch
    return int(utime.time()) - 946684800 + _world.get("ntp", {}).get("offset_s", 0)


def settime():
    import machine
    import time as _time
    t = _time.gmtime(time())
    machine.RTC().datetime((t[0], t[1], t[2], t[6] + 1, t[3], t[4], t[5], 0))
