# time as the ESP32 port has it (extmod/modtime.c, ports/esp32/mphalport.c):
#  - ticks_ms wraps every 2**30 ms (MICROPY_PY_TIME_TICKS_PERIOD is the small-
#    int range on a 32-bit port); the simulated board starts a few seconds
#    before the wrap (world "ticks_start"), so every device test crosses it;
#  - the epoch is 2000-01-01 (py/mpconfig.h: MICROPY_EPOCH_IS_2000 is the
#    default and the esp32 port keeps it), for time(), gmtime() and mktime();
#  - time() follows the RTC, which starts at 2000-01-01 on a cold boot and is
#    set by machine.RTC().datetime (what ntptime.settime does).

from utime import sleep, sleep_ms, sleep_us, ticks_cpu, ticks_us  # noqa: F401
import utime

import _world

PERIOD = 1 << 30
EPOCH_2000 = 946684800         # 2000-01-01 in the host's 1970 epoch
_start = _world.get("ticks_start", PERIOD - 20000)
_offset = (_start - utime.ticks_ms()) % PERIOD
_rtc = [0, utime.ticks_ms()]   # RTC seconds (2000 epoch) at host ticks


def ticks_ms():
    return (utime.ticks_ms() + _offset) & (PERIOD - 1)


# ticks arithmetic in the board's period (extmod/modtime.c), also when the
# interpreter running the fakes is a 64-bit one, whose own period is larger
def ticks_add(t, delta):
    return (t + delta) & (PERIOD - 1)


def ticks_diff(a, b):
    return ((a - b + PERIOD // 2) & (PERIOD - 1)) - PERIOD // 2


def time():
    return _rtc[0] + utime.ticks_diff(utime.ticks_ms(), _rtc[1]) // 1000


def time_ns():
    return time() * 1000000000


def gmtime(secs=None):
    return utime.gmtime(EPOCH_2000 + (time() if secs is None else secs))


localtime = gmtime


def mktime(t):
    return utime.mktime(t) - EPOCH_2000


def set_rtc(seconds):
    _rtc[0], _rtc[1] = seconds, utime.ticks_ms()
