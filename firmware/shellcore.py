# The shell core both shells run (hal/sim/run.py, hal/esp32/shell.py): one
# time-ordered queue of the meter's inputs and one order of work. A shell
# differs only in how it waits and which drivers feed the queue: the
# simulator schedules inputs ahead in virtual time, the device puts in what
# its drivers saw this turn (the time source's answer, a button press).
# Pulses are not queued: the meter reads its counter at every step.

from firmware.ledger import Rejected

# Input kinds, in the order inputs due at the same time are taken.
CLOCK = 0      # data: UTC seconds a time source reported
TOPUP = 1      # data: (amount, ref, vend seq or None)
KEYS = 2       # data: token digits typed on the keypad, or "button" (its button key)
BUTTON = 3     # the customer's button


class ShellCore:
    def __init__(self, app, console=None, sync=None, wall0=None):
        """app: the MeterApp (a shell that reboots in place sets a new one:
        the queue outlives it); console: a firmware.console.Console; sync: a
        firmware.sync.Sync, if provisioned; wall0: the UTC second at meter
        time 0, if a time source knows it."""
        self.app = app
        self.console = console
        self.sync = sync
        self.queue = []            # (t_ms, kind, n, data), in the order they are taken
        self.n = 0                 # inputs queued so far: same time and kind keep order
        self.wall0 = wall0

    def at(self, t_ms, kind, data=None):
        """An input for the meter at t_ms (now, or later in the simulator)."""
        self.n += 1
        e = (t_ms, kind, self.n, data)
        q = self.queue
        i = len(q)
        while i and q[i - 1][:3] > e[:3]:
            i -= 1
        q.insert(i, e)

    def wall(self, now_ms):
        """UTC seconds now by the last time-source reading, or None."""
        return None if self.wall0 is None else self.wall0 + now_ms // 1000

    def wake(self, now_ms):
        """The latest time the meter must run again: its own next wake (a
        minute boundary, a deferred relay switch) or the next queued input."""
        w = self.app.next_wake(now_ms)
        q = self.queue
        if q and q[0][0] < w:
            w = q[0][0] if q[0][0] > now_ms else now_ms
        return w

    def step(self, now_ms):
        """Bill the pulses counted, then take every input due by now_ms."""
        self.app.step(now_ms)
        q = self.queue
        while q and q[0][0] <= now_ms:
            _, kind, _, data = q.pop(0)
            self._take(kind, data, now_ms)

    def _take(self, kind, data, now):
        app = self.app
        if kind == CLOCK:
            self.wall0 = data - now // 1000
            app.sync_clock(data, now)
        elif kind == TOPUP:
            try:
                app.topup(data[1], data[0], now, data[2])
            except Rejected:
                pass       # logged as an event by the app
        elif kind == KEYS and data != "button":
            try:
                app.enter_token(data, now)
            except ValueError:
                pass       # logged as an event by the app
        else:
            app.button(now)

    def network(self, now_ms, real_ms):
        """The sync's share of a turn (it never waits on the network);
        "reboot" once a signed command asked for one."""
        if self.sync is None:
            return None
        self.sync.poll(now_ms, real_ms)
        return self.sync.action

    def console_byte(self, b, now_ms):
        """One byte from the serial console; "reboot" or "repl" when a
        command asked the shell for one."""
        self.console.feed(b, now_ms)
        return self.console.action
