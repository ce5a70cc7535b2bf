# The device's main loop: the ESP32 counterpart of hal/sim/run.py, on the
# same shell core (firmware/shellcore.py). Each turn: the watchdog, what the
# drivers saw (the time source's answer, a button press) into the core's
# queue, metering and those inputs, the MQTT sync's share (which never waits
# on the network), the console's bytes as they come (never waiting for them).
# Keyboard interrupt is off: only a technician's `repl` command ends the loop,
# and it does so through a reset into maintenance mode: an ESP32 watchdog
# cannot be stopped, so a REPL reached with it armed would be reset within
# WDT_MS.

import gc
import select
import sys
import time

import machine
import micropython

from firmware.app import MeterApp
from firmware.commands import Commands
from firmware.console import Console
from firmware.socketwatch import SocketWatch
from firmware.shellcore import BUTTON, CLOCK, ShellCore

TURN_MS = 20          # a turn's sleep when a decision may be near
IDLE_MS = 250         # the longest sleep: console bytes and broker data end it early
WDT_MS = 8000         # a hang reboots the meter; the ledger makes that harmless
CONSOLE_BYTES = 64    # console bytes handled per turn at most
# A collection after every GC_EVERY bytes allocated, not only when the heap is
# full: garbage goes back while it is still next to where new objects are
# made, so long-lived ones do not land between stale ones all over the heap
# (fragmentation: with a 1 KiB record to write, free bytes that are not in
# one piece are no use). A collection of the meter's ~110 KB takes 0.3 ms on
# the 32-bit interpreter on a PC; not measured on a board.
GC_EVERY = 4096
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


def sleep_ms(app, now):
    """How long this turn may sleep. Pulses wake nothing (the PCNT counts
    them), so while the next pulses could change a decision (credit close to
    a threshold, a power limit watched) the loop looks every TURN_MS; else up
    to IDLE_MS, or to the meter's next wake if sooner."""
    k = app.supply.steady_pulses(now)
    # pulses an IDLE_MS sleep may see at the power now, and two to spare
    near = app.billing.meter.power_w(now) * app.ledger.imp * IDLE_MS // 3600000000 + 2
    if k <= near:
        return TURN_MS
    ms = app.next_wake(now) - now
    return TURN_MS if ms < TURN_MS else (IDLE_MS if ms > IDLE_MS else ms)


def run(board, hal, sync_factory=None):
    """Run the meter until `repl` or `reboot` (both reset the board).
    sync_factory(app) -> Sync or None."""
    wdt = machine.WDT(timeout=WDT_MS)
    gc.collect()
    gc.threshold(GC_EVERY)
    t0 = time.ticks_ms()
    elapsed = 0       # ms since boot: the meter's clock, never wraps
    app = MeterApp(board, hal, lambda ev, t: None, 0)
    console = Console(Commands(app), sys.stdout.write, 0, echo=True)
    console.start()
    core = ShellCore(app, console, sync_factory(app) if sync_factory else None)
    # bytes, not text: a text stream decodes UTF-8 and would wait for (or
    # choke on) the rest of a character that a stray byte began
    stdin = getattr(sys.stdin, "buffer", sys.stdin)
    console_in = select.poll()          # console bytes waiting?
    console_in.register(sys.stdin, select.POLLIN)
    poll = select.poll()                # the sleep: console bytes or broker data
    poll.register(sys.stdin, select.POLLIN)
    micropython.kbd_intr(-1)
    watch = SocketWatch(poll)           # broker data ends the sleep too
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
                if action or not console_in.poll(0):
                    break
                action = core.console_byte(stdin.read(1), elapsed)
            if action in ("reboot", "repl"):
                app.ledger.flush()
                if action == "repl":
                    machine.RTC().memory(MAINTENANCE)
                machine.reset()
            link = watch.follow(core.sync)
            # the turn's rest, ended early by a console byte or broker data;
            # short while the link holds bytes to send or to take apart
            busy = link is not None and (link.out or link.inp or core.sync.updating())
            poll.poll(TURN_MS if busy else sleep_ms(app, elapsed))
    finally:
        micropython.kbd_intr(3)
