"""A TCP proxy on loopback that delays every byte by half a round-trip time
each way: a slow WiFi/WAN path between a meter and its broker."""

import heapq
import socket
import threading
import time


class DelayProxy:
    def __init__(self, target_port, rtt_ms):
        self.target = ("127.0.0.1", target_port)
        self.delay = rtt_ms / 2000.0
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(8)
        self.port = self.srv.getsockname()[1]
        self.accepted = 0
        self.stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        self.srv.settimeout(0.2)
        while not self.stop.is_set():
            try:
                a, _ = self.srv.accept()
            except OSError:
                continue
            self.accepted += 1
            try:
                b = socket.create_connection(self.target)
            except OSError:
                a.close()
                continue
            for s in (a, b):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._pipe(a, b)
            self._pipe(b, a)

    def _pipe(self, src, dst):
        """Bytes from src reach dst `delay` later, in order."""
        q, cv = [], threading.Condition()
        n = [0]

        def reader():
            while not self.stop.is_set():
                try:
                    d = src.recv(65536)
                except OSError:
                    d = b""
                with cv:
                    n[0] += 1
                    heapq.heappush(q, (time.monotonic() + self.delay, n[0], d))
                    cv.notify()
                if not d:
                    return

        def writer():
            while True:
                with cv:
                    while not q:
                        cv.wait()
                    at, _, d = q[0]
                    wait = at - time.monotonic()
                    if wait > 0:
                        cv.wait(wait)
                        continue
                    heapq.heappop(q)
                try:
                    if not d:
                        dst.shutdown(socket.SHUT_WR)
                        return
                    dst.sendall(d)
                except OSError:
                    return

        threading.Thread(target=reader, daemon=True).start()
        threading.Thread(target=writer, daemon=True).start()

    def close(self):
        self.stop.set()
        self.srv.close()
