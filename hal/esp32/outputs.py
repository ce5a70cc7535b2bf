# Relay, indicator (LED and buzzer) and the customer's button on an ESP32.

import time

from machine import Pin

MAX_COIL_MS = 200   # a coil pulse blocks the loop this long at most


class MonostableRelay:
    """A relay held by a level: pin high = supply on (board may invert)."""

    def __init__(self, pin, active_high=True):
        self.pin = Pin(pin, Pin.OUT)
        self.on = 1 if active_high else 0
        self.closed = False

    def set(self, closed):
        self.pin.value(self.on if closed else 1 - self.on)
        self.closed = closed

    def pulse(self, closed, ms):
        self.set(closed)


class LatchingRelay:
    """A bistable relay: a pulse on the set coil closes it, on the reset
    coil opens it; it keeps its position without power."""

    def __init__(self, set_pin, reset_pin):
        self.set_pin = Pin(set_pin, Pin.OUT, value=0)
        self.reset_pin = Pin(reset_pin, Pin.OUT, value=0)
        self.closed = False

    def pulse(self, closed, ms):
        coil = self.set_pin if closed else self.reset_pin
        coil.value(1)
        time.sleep_ms(ms if ms < MAX_COIL_MS else MAX_COIL_MS)
        coil.value(0)
        self.closed = closed

    def set(self, closed):
        self.pulse(closed, 100)


class Indicator:
    """LED on while credit is low, in emergency or exhausted; a short beep on
    each change into one of those."""

    WARN = ("low", "emergency", "exhausted", "friendly")

    def __init__(self, led_pin, buzzer_pin=None):
        self.led = Pin(led_pin, Pin.OUT, value=0)
        self.buzzer = Pin(buzzer_pin, Pin.OUT, value=0) if buzzer_pin is not None else None
        self.state = None

    def show(self, state):
        warn = state in self.WARN
        self.led.value(1 if warn else 0)
        if warn and self.buzzer is not None and state != self.state:
            self.buzzer.value(1)
            time.sleep_ms(50)
            self.buzzer.value(0)
        self.state = state


class Button:
    """The customer's button (to ground, internal pull-up), debounced."""

    def __init__(self, pin, debounce_ms=200):
        self.pin = Pin(pin, Pin.IN, Pin.PULL_UP)
        self.debounce_ms = debounce_ms
        self._pressed = False
        self._last = time.ticks_ms()
        self.pin.irq(trigger=Pin.IRQ_FALLING, handler=self._edge)

    def _edge(self, pin):
        now = time.ticks_ms()
        if time.ticks_diff(now, self._last) > self.debounce_ms:
            self._pressed = True
        self._last = now

    def pressed(self):
        """True once per press."""
        p = self._pressed
        self._pressed = False
        return p
