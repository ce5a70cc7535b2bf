# The simulator in real time (hal/sim/run.py runs virtual time as fast as it
# can without it): virtual time that follows the wall clock, a wait that sleeps
# until the next thing can happen, the status loop and the serial console.
# Loaded only by a meter that runs in real time.

import micropython
import select
import sys
import termios
import time

from firmware.socketwatch import SocketWatch


class RealTime:
    """Virtual time that follows the wall clock, K times faster."""

    def __init__(self, speed):
        self.speed = speed
        self.last = time.ticks_ms()
        self.elapsed = 0

    def now(self):
        t = time.ticks_ms()
        self.elapsed += time.ticks_diff(t, self.last)
        self.last = t
        return int(self.elapsed * self.speed)


class Waiter:
    """How the simulator waits in real time: until the next thing can happen
    (the meter's next wake, pulse or report, in real ms at the chosen speed),
    a console byte, or the broker's socket turning readable. Never a busy
    loop: on this port time.sleep_ms(20) wakes 32 times, poll() once."""

    MAX_MS = 1000          # the status line, keepalive and backoff need no finer
    BUSY_MS = 20           # while a connection opens or output is pending

    def __init__(self, sim, rt, stdin=None, poll=None):
        """poll: a select.poll shared by several meters (hal/sim/fleet.py)."""
        self.sim = sim
        self.rt = rt
        self.poll = select.poll() if poll is None else poll
        if stdin is not None:
            self.poll.register(stdin, select.POLLIN)
        self.watch = SocketWatch(self.poll)
        self.inp_seen = 0          # bytes buffered in the link at the last wait

    def wait(self):
        self.poll.poll(max(0, int(self.delay())))

    def delay(self):
        """Real ms until this meter needs its next turn (its broker socket,
        registered in the poll, may end the wait sooner)."""
        sim = self.sim
        v = sim.clock.now_ms()
        speed = self.rt.speed
        nxt = sim.next_event(v, v + int(self.MAX_MS * speed))
        sync = sim.sync
        if sync is not None and sync.delivery.next_tele is not None:
            nxt = min(nxt, max(v, sync.delivery.next_tele))    # a telemetry snapshot is due
        ms = (nxt - v) / speed
        link = self.watch.follow(sync)
        n = len(link.inp) if link is not None else 0
        if n and n != self.inp_seen:
            ms = 0          # bytes the link took in after the sync's turn: no socket event comes
        elif link is not None and (n or link.out or not sync.connected()):
            ms = min(ms, self.BUSY_MS)      # a part of a packet, output, a connection opening
        elif sync is not None and link is None:
            ms = min(ms, self.MAX_MS // 4)     # a retry after backoff is due in time
        self.inp_seen = n
        return ms


def run_status(sim, out, end=None):
    """Real time (K times faster with --speed) with a live status line, until
    Ctrl-C or, when end is given, until virtual time reaches it."""
    rt = RealTime(sim.cfg.get("speed", 1))
    waiter = Waiter(sim, rt)
    try:
        while end is None or sim.clock.now_ms() < end:
            now = rt.now()
            sim.advance(now if end is None or now < end else end)
            sim.poll_network()
            if not out.json and out.live:
                out.status(sim.app.status(sim.clock.now_ms()), sim.clock.now_ms())
            if end is None or sim.clock.now_ms() < end:
                waiter.wait()
    except KeyboardInterrupt:
        pass


def run_console(sim):
    """Real time with the terminal as the meter's serial console. On a tty
    the line is put in raw mode (the console echoes, as the device does over
    its UART); a pipe is read as it comes. Ends at end of input (Ctrl-D on a
    terminal) or when a technician leaves for the REPL."""
    try:
        saved = termios.tcgetattr(0)
        termios.setraw(0)
    except OSError:
        saved = None
    # As on the device: Ctrl-C is a byte for the console, not a way into the
    # REPL past the PIN; only the `repl` command leaves the firmware.
    micropython.kbd_intr(-1)
    from firmware.commands import Commands       # only a meter someone talks to needs them
    from firmware.console import Console
    rt = RealTime(sim.cfg.get("speed", 1))
    console = sim.core.console = Console(Commands(sim.app), sys.stdout.write, 0,
                                         echo=saved is not None)
    console.start()
    waiter = Waiter(sim, rt, sys.stdin)
    ready = select.poll()
    ready.register(sys.stdin, select.POLLIN)
    stdin = sys.stdin.buffer
    try:
        while True:
            now = rt.now()
            sim.advance(now)
            sim.poll_network()
            console.tick(now)
            if not ready.poll(0):
                waiter.wait()        # until a byte, the broker, or the meter's next event
                continue
            b = stdin.read(1)
            if not b or (saved is not None and b == b"\x04"):
                return
            action = sim.core.console_byte(b, sim.clock.now_ms())
            if action == "repl":
                return
            if action == "reboot":
                sim.app.ledger.flush()
                sim.boot()
                console = sim.core.console = Console(Commands(sim.app), sys.stdout.write,
                                                     sim.clock.now_ms(), echo=saved is not None)
                console.start()
    finally:
        micropython.kbd_intr(3)
        if saved is not None:
            termios.tcsetattr(0, termios.TCSANOW, saved)
