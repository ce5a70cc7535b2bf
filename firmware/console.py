# Technician serial console: text lines in, text lines out, over any byte
# stream. The shell feeds it whatever bytes arrived (never blocking) and writes
# what it returns. Every command's reply ends with a line a program can detect:
# "ok" or "error: <reason>". Garbage gets an error and changes nothing.

from firmware.cmdbase import ANYONE, TECHNICIAN, Session

MAX_LINE = 1024      # a tariff in JSON fits on one line
CR, LF, BS, DEL, CTRL_C = 13, 10, 8, 127, 3
BANNER = "prepaid meter console; type help"


class Console:
    def __init__(self, commands, write, now_ms, echo=False):
        """write(text) sends to the technician. With echo (a terminal on the
        line) typed characters are echoed, lines end CRLF and a prompt shows."""
        self.cmds = commands
        self.write = write
        self.echo = echo
        self.nl = "\r\n" if echo else "\n"
        self.session = Session(ANYONE, now_ms)
        self.buf = bytearray()
        self.bad = None          # why the line being typed will be refused
        self._after_cr = False
        self.action = None       # "reboot"/"repl" requested by a command

    def start(self):
        if self.echo:
            self.write(BANNER + self.nl + "> ")

    def feed(self, data, now_ms):
        """Take bytes from the line; run every complete line."""
        for c in data:
            if c == LF and self._after_cr:
                self._after_cr = False
                continue          # CR LF is one line end
            self._after_cr = c == CR
            if c == CR or c == LF:
                self._end_line(now_ms)
            elif c == BS or c == DEL:
                if self.buf and self.bad is None:
                    self.buf = self.buf[:-1]
                    if self.echo:
                        self.write("\b \b")
            elif c == CTRL_C:
                self.buf = bytearray()
                self.bad = None
                self._reply([], "cancelled")
            elif 32 <= c < 127:
                if len(self.buf) >= MAX_LINE:
                    self.bad = "line too long (at most %d characters)" % MAX_LINE
                elif self.bad is None:
                    self.buf.append(c)
                    if self.echo:
                        self.write(chr(c))
            else:
                self.bad = "control characters or binary data in line"

    def tick(self, now_ms):
        """Idle timeout: a technician session ends by itself."""
        ses = self.session
        idle = self.cmds.app.settings.get("idle_timeout_s") * 1000
        if ses.level >= TECHNICIAN and now_ms - ses.last_ms > idle:
            ses.level = ANYONE
            self.cmds.app.emit({"event": "logout", "detail": "idle"}, now_ms)

    def _end_line(self, now_ms):
        if self.echo:
            self.write(self.nl)
        line, bad = self.buf, self.bad
        self.buf, self.bad = bytearray(), None
        if bad is not None:
            self._reply([], bad)
            return
        words = line.decode().split()
        if not words:
            if self.echo:
                self.write("> ")
            return
        self.tick(now_ms)
        self.session.last_ms = now_ms
        r = self.cmds.run(self.session, words, now_ms)
        if r.action:
            self.action = r.action
        self._reply(r.lines, r.error)

    def _reply(self, lines, error):
        out = [ln + self.nl for ln in lines]
        out.append(("error: " + error if error else "ok") + self.nl)
        if self.echo:
            out.append("> ")
        self.write("".join(out))
