# The simulated board's surroundings, shared by the fake modules: read once
# from the JSON file named by $DEVICE_WORLD; what the fakes observe is written
# back to the report file the test reads.

import _thread
import json
import os

import utime

try:
    with open(os.getenv("DEVICE_WORLD") or "world.json") as f:
        W = json.load(f)
except OSError:
    W = {}

_report = {"resets": []}
_lock = _thread.allocate_lock()     # the watchdog and DNS threads report too
T0 = utime.ticks_ms()           # host ticks at power-on


def since_boot_ms():
    return utime.ticks_diff(utime.ticks_ms(), T0)


def get(key, default=None):
    return W.get(key, default)


def report(key, value):
    with _lock:
        _report[key] = value
        path = W.get("report")
        if path:
            with open(path + ".tmp", "w") as f:
                json.dump(_report, f)
            os.rename(path + ".tmp", path)


def reported(key, default=None):
    return _report.get(key, default)


def within(windows, t_ms):
    for a, b in windows:
        if a <= t_ms < b:
            return True
    return False


def hard_reset(reason):
    """The chip resets: the process ends at once (the test harness boots it
    again if it wants). Nothing after this line runs, as on a board."""
    report("resets", _report["resets"] + [reason])
    os.system("kill -9 $PPID")
