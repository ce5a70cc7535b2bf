"""Drive the simulated meter's serial console through a real pty."""

import os
import pty
import select
import subprocess
import sys
import time

from conftest import ROOT

PROMPT = b"\r\n> "


class PtyIO:
    """Reading a program's output from the master side of its pty."""

    master = None
    buf = b""

    def diagnose(self):
        return ""

    def read_until(self, marker, timeout=20):
        end = time.time() + timeout
        while marker not in self.buf:
            left = end - time.time()
            if left <= 0:
                raise AssertionError("timed out waiting for %r; got %r%s"
                                     % (marker, self.buf[-800:], self.diagnose()))
            r, _, _ = select.select([self.master], [], [], min(left, 0.5))
            if r:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    raise AssertionError("console closed; got %r%s"
                                         % (self.buf[-800:], self.diagnose()))
                self.buf += chunk
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out


class PtyConsole(PtyIO):
    def __init__(self, *args):
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "tools" / "sim.py"), "--console"]
            + [str(a) for a in args],
            stdin=slave, stdout=slave, stderr=subprocess.PIPE, close_fds=True)
        os.close(slave)
        self.buf = b""
        self.banner = self.read_until(b"> ")

    def send(self, data):
        os.write(self.master, data)

    def cmd(self, line):
        """Send one line; return (reply lines, final line) with the echo removed."""
        self.send(line.encode() + b"\r")
        out = self.read_until(PROMPT).decode(errors="replace")
        lines = out[:-len("\r\n> ")].split("\r\n")
        echo, reply = lines[0], lines[1:]
        assert echo == line, (echo, line)
        return reply[:-1], reply[-1]

    def ok(self, line):
        lines, last = self.cmd(line)
        assert last == "ok", (line, lines, last)
        return lines

    def error(self, line):
        lines, last = self.cmd(line)
        assert last.startswith("error: "), (line, lines, last)
        return last[len("error: "):]

    def kv(self, line):
        return dict(x.split("=", 1) for x in self.ok(line))

    def close(self, sig=None):
        if self.proc.poll() is None:
            if sig:
                self.proc.send_signal(sig)
            else:
                self.send(b"\x04")     # Ctrl-D: end of input on a terminal
        try:
            rc = self.proc.wait(timeout=20)
        finally:
            os.close(self.master)
        return rc


def stable(status):
    """The parts of `status` that no command but a real change alters."""
    return {k: v for k, v in status.items() if k not in ("uptime_s", "power_w")}
