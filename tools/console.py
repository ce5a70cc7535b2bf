#!/usr/bin/env python3
"""Talk to a meter's technician console over a serial port (pyserial).

    tools/console.py --port /dev/ttyUSB0                      # interactive, line by line
    tools/console.py --port /dev/ttyUSB0 --pin 2468 status "topup 500 TX-1"

With commands on the command line each is sent in turn (after `login PIN` when
--pin is given) and its reply printed; the exit code is 0 when every reply ended
in `ok`, 1 otherwise, 2 for a usage error; a session it logged in is logged out. Interactive mode reads lines from
stdin and prints each reply. The console protocol is in docs/console.md."""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mp  # noqa: E402

serial = mp.need("serial", "tools/console.py")

DONE_TIMEOUT_S = 20


class MeterConsole:
    def __init__(self, port, baud=115200):
        self.ser = serial.Serial(port, baud, timeout=0.1)
        self.buf = b""

    def _line(self, deadline):
        while b"\n" not in self.buf:
            if time.time() > deadline:
                raise TimeoutError("no reply from the meter")
            self.buf += self.ser.read(4096)
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode(errors="replace")

    def sync(self):
        """Start from a clean line: an empty line gets no reply, only a prompt."""
        self.ser.write(b"\r")
        time.sleep(0.3)
        self.ser.reset_input_buffer()
        self.buf = b""

    def command(self, text):
        """Send one command; return (reply lines, final 'ok' or 'error: ...')."""
        self.ser.write(text.encode() + b"\r")
        deadline = time.time() + DONE_TIMEOUT_S
        lines = []
        while True:
            line = self._line(deadline)
            while line.startswith("> "):      # a prompt before the echo or reply
                line = line[2:]
            if not lines and line == text:     # the meter's echo of our line
                continue
            if line == "ok" or line.startswith("error: "):
                return lines, line
            lines.append(line)


def main(argv=None):
    p = argparse.ArgumentParser(prog="tools/console.py", description=__doc__.splitlines()[0])
    p.add_argument("--port", required=True, help="serial device, e.g. /dev/ttyUSB0")
    p.add_argument("--baud", type=int, default=115200)
    p.add_argument("--pin", help="log in with this technician PIN first")
    p.add_argument("commands", nargs="*", help="commands to run, then exit")
    args = p.parse_args(argv)
    try:
        con = MeterConsole(args.port, args.baud)
    except serial.SerialException as e:
        p.error(str(e))
    con.sync()
    todo = (["login " + args.pin] if args.pin else []) + args.commands
    failed = False
    try:
        if todo:
            for cmd in todo:
                lines, last = con.command(cmd)
                for line in lines:
                    print(line)
                print(last)
                failed |= last != "ok"
                if cmd.startswith("login ") and last != "ok":
                    return 1
            if args.pin:
                con.command("logout")   # leave no session open on the line
            return 1 if failed else 0
        for text in sys.stdin:
            lines, last = con.command(text.strip())
            print("\n".join(lines + [last]), flush=True)
        return 0
    except TimeoutError as e:
        print("error: %s" % e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
