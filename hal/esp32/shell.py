# The device's main loop: the ESP32 counterpart of hal/sim/run.py, on the
# same shell core (firmware/shellcore.py). Each turn: the watchdog, what the
# drivers saw (the time source's answer, a button press) into the core's
# queue, metering and those inputs, the MQTT sync's share (which never waits
# on the network), the console's bytes as they come (never waiting for them).
# Keyboard interrupt is off: only a technician's `repl` command ends the loop,
# and it does so through a reset into maintenance mode: an ESP32 watchdog
# cannot be stopped, so a REPL reached with it armed would be reset within
# WDT_MS.

import select
import sys
import time

import machine
import micropython

from firmware.app import MeterApp
from firmware.commands import Commands
from firmware.console import Console
from firmware.shellcore import BUTTON, CLOCK, ShellCore

TURN_MS = 20
WDT_MS = 8000         # a hang reboots the meter; the ledger makes that harmless
CONSOLE_BYTES = 64    # console bytes handled per turn at most
# In RTC memory, which survives machine.reset() but not a power cut: the next
# boot stays in the REPL, with no watchdog and no meter loop. A meter that
# loses power while in maintenance comes back metering.
MAINTENANCE = b"maintenance"


def maintenance_requested():
    """True, once, after `repl` reset the board."""
    rtc = machine.RTC()
    if rtc.memory() != MAINTENANCE:
        return False
    rtc.memory(b"")
    return True


def run(board, hal, sync_factory=None):
    """Run the meter until `repl` or `reboot` (both reset the board).
    sync_factory(app) -> Sync or None."""
    wdt = machine.WDT(timeout=WDT_MS)
    t0 = time.ticks_ms()
    elapsed = 0       # ms since boot: the meter's clock, never wraps
    app = MeterApp(board, hal, lambda ev, t: None, 0)
    console = Console(Commands(app), sys.stdout.write, 0, echo=True)
    console.start()
    core = ShellCore(app, console, sync_factory(app) if sync_factory else None)
    # bytes, not text: a text stream decodes UTF-8 and would wait for (or
    # choke on) the rest of a character that a stray byte began
    stdin = getattr(sys.stdin, "buffer", sys.stdin)
    poll = select.poll()
    poll.register(sys.stdin, select.POLLIN)
    micropython.kbd_intr(-1)
    try:
        while True:
            wdt.feed()
            t = time.ticks_ms()
            elapsed += time.ticks_diff(t, t0)
            t0 = t
            wall = hal.time_source.poll()
            if wall is not None:
                core.at(elapsed, CLOCK, wall)
            if hal.button.pressed():
                core.at(elapsed, BUTTON)
            core.step(elapsed)
            action = core.network(elapsed, t)     # "reboot": a signed command asked
            console.tick(elapsed)
            for _ in range(CONSOLE_BYTES):
                if action or not poll.poll(0):
                    break
                action = core.console_byte(stdin.read(1), elapsed)
            if action in ("reboot", "repl"):
                app.ledger.flush()
                if action == "repl":
                    machine.RTC().memory(MAINTENANCE)
                machine.reset()
            poll.poll(TURN_MS)    # the turn's rest, ended early by a console byte
    finally:
        micropython.kbd_intr(3)
