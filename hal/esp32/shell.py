# The device's main loop: the ESP32 counterpart of hal/sim/run.py. One
# cooperative loop: metering every turn, the console's bytes as they come (never
# waiting for them), the MQTT sync's bounded share, the button, the watchdog.
# Keyboard interrupt is off: only a technician's `repl` command ends the loop.

import select
import sys
import time

import micropython
from machine import WDT

from firmware.app import MeterApp
from firmware.commands import Commands
from firmware.console import Console

TURN_MS = 20
WDT_MS = 8000       # a hang reboots the meter; the ledger makes that harmless


def run(board, hal, sync_factory=None):
    """Run the meter until `repl`. sync_factory(app) -> Sync or None."""
    wdt = WDT(timeout=WDT_MS)
    now = time.ticks_ms
    t0 = now()
    elapsed = 0
    app = MeterApp(board, hal, lambda ev, t: None, 0, None, None, hal.wall_time())
    console = Console(Commands(app), sys.stdout.write, 0, echo=True)
    console.start()
    sync = sync_factory(app) if sync_factory else None
    poll = select.poll()
    poll.register(sys.stdin, select.POLLIN)
    micropython.kbd_intr(-1)
    try:
        while True:
            wdt.feed()
            t = now()
            elapsed += time.ticks_diff(t, t0)
            t0 = t
            app.step(elapsed)
            if hal.button.pressed():
                app.button(elapsed)
            if sync is not None:
                sync.poll(elapsed, t)
            console.tick(elapsed)
            while poll.poll(0):
                b = sys.stdin.read(1)
                console.feed(b.encode() if isinstance(b, str) else b, elapsed)
                if console.action == "reboot":
                    import machine
                    machine.reset()
                if console.action == "repl":
                    return
            time.sleep_ms(TURN_MS)
    finally:
        micropython.kbd_intr(3)
