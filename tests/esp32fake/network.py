# network.WLAN as ports/esp32/network_wlan.c has it, for the device lane.
# connect() (re)starts the association: a call while associating starts it
# over, as the port re-runs esp_wifi_set_config + esp_wifi_connect. It
# associates "assoc_ms" after the last connect() call (world "wifi"), drops in
# the "down" windows (ms since boot) and, as the port does after a drop,
# reconnects by itself once the access point is back.

import _world

STA_IF, AP_IF = 0, 1
STAT_IDLE, STAT_CONNECTING, STAT_GOT_IP = 1000, 1001, 1010

_cfg = _world.get("wifi", {})


class _WLAN:
    def __init__(self, interface_id=STA_IF):
        self._active = False
        self._since = None       # ms since boot of the last connect()
        self.calls = 0

    def active(self, on=None):
        if on is None:
            return self._active
        self._active = bool(on)

    def connect(self, ssid=None, key=None, *, bssid=None):
        if not self._active:
            raise OSError("STA must be active")
        self.calls += 1
        _world.report("wifi_connect_calls", self.calls)
        _world.report("wifi_ssid", ssid)
        self._since = _world.since_boot_ms()

    def disconnect(self):
        self._since = None

    def isconnected(self):
        if self._since is None or not _cfg.get("up", True):
            return False
        t = _world.since_boot_ms()
        if _world.within(_cfg.get("down", []), t):
            return False
        return t - self._since >= _cfg.get("assoc_ms", 0)

    def status(self, param=None):
        if param is not None:
            return -60
        if self.isconnected():
            return STAT_GOT_IP
        return STAT_IDLE if self._since is None else STAT_CONNECTING

    def ifconfig(self, cfg=None):
        return ("10.0.0.2", "255.255.255.0", "10.0.0.1", "10.0.0.1")

    def config(self, *a, **kw):
        return None


_sta = _WLAN()


def WLAN(interface_id=STA_IF):
    """The port keeps one station interface: every WLAN(STA_IF) is the same object."""
    return _sta
