"""A unix-port MicroPython REPL on a pty, reachable as socket://HOST:PORT: the
"board" mpremote talks to when tools/deploy.py is tested."""

import os
import pty
import select
import socket
import subprocess
import threading
import tty

import mp


class ReplBridge:
    """A unix-port MicroPython REPL on a pty, reachable as socket://."""

    def __init__(self, workdir, env=None):
        self.master, slave = pty.openpty()
        tty.setraw(slave)
        self.proc = subprocess.Popen([mp.micropython()], stdin=slave, stdout=slave,
                                     stderr=slave, close_fds=True, cwd=workdir, env=env)
        os.close(slave)
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(4)
        self.port = self.srv.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        self.srv.settimeout(0.2)
        while not self.stop.is_set():
            try:
                c, _ = self.srv.accept()
            except OSError:
                continue
            # mpremote's raw REPL is many small writes each way: without these,
            # Nagle and delayed ACKs hold each round trip up to 40 ms on loopback
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while not self.stop.is_set():
                r, _, _ = select.select([c, self.master], [], [], 0.2)
                if c in r:
                    d = c.recv(4096)
                    if not d:
                        break
                    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
                    os.write(self.master, d)
                if self.master in r:
                    c.sendall(os.read(self.master, 4096))
            c.close()

    def close(self):
        self.stop.set()
        self.thread.join()
        self.proc.kill()
        self.proc.wait()
        self.srv.close()
        os.close(self.master)


def esp32_board(tmp, chip):
    """The environment of a REPL that stands for an ESP32 board whose whole
    flash is the image file `chip` (tests/esp32fake: esp32.Partition finds
    partitions in the table at 0x8000, as the port does)."""
    world = tmp / "world.json"
    world.write_text('{"chip_image": "%s"}' % chip)
    # a board's path: '', its frozen modules (ssl.py among them), /lib
    return dict(os.environ, MICROPYPATH=":".join(["", ".frozen",
                                                  str(mp.ROOT / "tests" / "esp32fake"), "lib"]),
                DEVICE_WORLD=str(world))
