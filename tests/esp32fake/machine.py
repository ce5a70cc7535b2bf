# machine as the ESP32 port has it, for the device lane.
#   Pin      ports/esp32/machine_pin.c (value, irq, IN/OUT/PULL_UP/IRQ_*)
#   Counter  ports/esp32/modules/machine.py (Counter over esp32.PCNT: the
#            16-bit hardware count extended in software; value() the count,
#            value(0) resets it; RISING/FALLING, UP/DOWN)
#   WDT      ports/esp32/machine_wdt.c (WDT(id=0, timeout=ms); feed(); no
#            deinit: once started it cannot be stopped, and it survives a soft
#            reset; starved, it resets the chip)
#   RTC      ports/esp32/machine_rtc.c (datetime(), memory())
#   reset    ports/esp32/modmachine.c (a hard reset: the program ends)
# The energy IC's pulses come from the world ("pulses_per_s", or
# "pulses_per_ks" per 1000 s for rates that are not whole); with
# "relay_coils": [set_pin, reset_pin] they flow only while the latching relay's
# contacts are closed (a coil's rising edge moves them; open at power-on), so
# energy delivered after credit ran out can be measured; with "jumper": [out,
# in] a rising edge on pin `out` is a pulse on the input (counted by the PCNT
# stand-in, or the input's Pin.irq handler called). Pin levels and the
# watchdog's longest gap between feeds go to the report.

import _thread
import gc as _gc

import utime

import _world
import time as _time


class Pin:
    IN, OUT, OPEN_DRAIN = 1, 3, 7
    PULL_UP, PULL_DOWN = 1, 2
    IRQ_RISING, IRQ_FALLING = 1, 2

    def __init__(self, id, mode=-1, pull=-1, value=None):
        self.id = id
        self._v = 0
        if value is not None:
            self.value(value)

    def value(self, v=None):
        if v is None:
            return self._v
        if v and not self._v and self.id in _world.get("relay_coils", ()):
            _Contacts.move(self.id == _world.get("relay_coils")[0])
        jumper = _world.get("jumper")
        if v and not self._v and jumper and self.id == jumper[0]:
            # a wire from this output to the pulse input: a rising edge is a pulse
            _Contacts.wired += 1
            handler = Pin.handlers.get(jumper[1])
            if handler is not None:
                handler(self)
        self._v = 1 if v else 0
        pins = dict(_world.reported("pins", {}))
        pins[str(self.id)] = self._v
        _world.report("pins", pins)

    handlers = {}            # pin id -> its IRQ handler (what a jumper wire triggers)

    def irq(self, handler=None, trigger=3):
        self.handler = handler
        Pin.handlers[self.id] = handler


class _Contacts:
    """The relay's contacts and the pulses of the time they were closed (in
    millionths of a pulse)."""
    closed = False
    since = 0
    acc = 0
    wired = 0               # pulses a jumper wire brought (world "jumper": [out, in])

    @classmethod
    def move(cls, closed):
        cls.acc = cls.micro()
        cls.since = _world.since_boot_ms()
        cls.closed = closed

    @classmethod
    def micro(cls):
        rate = _world.get("pulses_per_ks", _world.get("pulses_per_s", 0) * 1000)
        if not _world.get("relay_coils"):
            return _world.since_boot_ms() * rate
        if not cls.closed:
            return cls.acc
        return cls.acc + (_world.since_boot_ms() - cls.since) * rate


class _Counter:
    RISING, FALLING = 1, 2
    UP, DOWN = 1, -1

    def __init__(self, unit_id, src=None, edge=RISING, direction=UP, *, filter_ns=0):
        if not 0 <= unit_id < 8:
            raise ValueError("invalid id")
        if direction not in (self.UP, self.DOWN):
            raise TypeError("direction")
        self._zero = 0

    def _now(self):
        return _Contacts.micro() // 1000000 + _Contacts.wired

    def value(self, v=None):
        n = self._now() - self._zero
        if v is not None:
            self._zero = self._now() - v
        return n


def __getattr__(name):
    # machine.py defines Counter only `if hasattr(esp32, "PCNT")`: on a chip
    # without PCNT (ESP32-C3) the name is missing and the import fails with
    # AttributeError (the module's __getattr__ asks the C module).
    if name == "Counter" and _world.get("chip", "esp32") != "esp32c3":
        return _Counter
    raise AttributeError(name)


# world "mem_live_ms": how often feed() measures the live heap (bench only:
# the collection it forces changes when the meter's own collections happen)
_MEM_EVERY = _world.get("mem_live_ms", 0)


class WDT:
    _armed = None
    _mem_at = 0

    def __init__(self, id=0, timeout=5000):
        if WDT._armed is not None:
            # the port reconfigures the one task watchdog
            WDT._armed.timeout = timeout
            self.__dict__ = WDT._armed.__dict__
            return
        WDT._armed = self
        self.timeout = timeout
        self.last = utime.ticks_ms()
        self.max_gap = 0
        _world.report("wdt_timeout_ms", timeout)
        _world.report("wdt_max_gap_ms", 0)
        _thread.start_new_thread(self._watch, ())

    def feed(self):
        t = utime.ticks_ms()
        gap = utime.ticks_diff(t, self.last)
        self.last = t
        if gap > self.max_gap:
            self.max_gap = gap
            _world.report("wdt_max_gap_ms", gap)
        if _MEM_EVERY and utime.ticks_diff(t, WDT._mem_at) >= _MEM_EVERY:
            WDT._mem_at = t
            _gc.collect()       # what the meter holds live, once a loop turn ends
            _world.report("mem_live", max(_world.reported("mem_live", 0), _gc.mem_alloc()))

    def _watch(self):
        while True:
            utime.sleep_ms(50)
            gap = utime.ticks_diff(utime.ticks_ms(), self.last)
            if gap > self.timeout:
                _world.report("wdt_max_gap_ms", gap)
                _world.hard_reset("watchdog: not fed for %d ms" % gap)


class RTC:
    def datetime(self, dt=None):
        if dt is None:
            t = _time.gmtime()
            return (t[0], t[1], t[2], t[6], t[3], t[4], t[5], 0)
        y, mo, d, _, h, mi, s = dt[:7]
        _time.set_rtc(_time.mktime((y, mo, d, h, mi, s, 0, 0)))

    def memory(self, data=None):
        # RTC slow memory (RTC_NOINIT_ATTR): kept across machine.reset() and
        # watchdog resets, lost at power-on; the test harness holds it in a file
        path = _world.get("rtc_mem")
        if data is None:
            try:
                with open(path, "rb") as f:
                    return f.read()
            except (OSError, TypeError):
                return b""
        if len(data) > 2048:
            raise ValueError("buffer too long")
        with open(path, "wb") as f:
            f.write(data)


def reset():
    _world.hard_reset("machine.reset")


def soft_reset():
    raise SystemExit


def unique_id():
    return b"\x24\x0a\xc4\x00\x00\x01"
