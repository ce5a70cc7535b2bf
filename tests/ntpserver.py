"""An NTP server on loopback for the device lane: it answers each request
(RFC 5905 server mode, stratum 2) with the host's clock plus offset_s, the
request's transmit timestamp as origin; silent, it answers nothing (a server
that is down or a firewall that drops UDP)."""

import socket
import struct
import threading
import time

NTP_UNIX = 2208988800


class NtpServer:
    def __init__(self, offset_s=0, silent=False):
        self.offset_s = offset_s
        self.silent = silent
        self.forge = False      # first send an answer to some other request, a day off
        self.requests = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self._stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                req, peer = self.sock.recvfrom(512)
            except OSError:
                continue
            self.requests += 1
            if self.silent or len(req) < 48:
                continue
            t = int(time.time()) + self.offset_s + NTP_UNIX
            if self.forge:
                self.sock.sendto(self._answer(b"\x00" * 8, t + 86400), peer)
            self.sock.sendto(self._answer(req[40:48], t), peer)

    @staticmethod
    def _answer(origin, t):
        return bytes((0x24, 2, 6, 0xEC)) + bytes(20) + origin + bytes(8) \
            + struct.pack(">II", t & 0xFFFFFFFF, 0)

    def close(self):
        self._stop = True
        self.sock.close()
