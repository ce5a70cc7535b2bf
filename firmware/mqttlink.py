# The byte link between umqtt.simple and the broker: a non-blocking socket
# with a buffer each way, so that no MQTT operation ever waits on the network
# inside the meter's loop.
#
# umqtt.simple is blocking by design: connect() waits for CONNACK, publish
# with QoS 1 waits for its PUBACK, and every read waits for the whole packet.
# With a real round-trip time that either stalls the loop or, with a short
# timeout, drops the connection. So umqtt is handed a Link instead of a socket:
#   - write() only queues bytes; pump() sends them when the socket takes them;
#   - read(n) is served from what pump() received; the sync asks umqtt to parse
#     a packet only once the whole packet is here, so umqtt never waits; the one
#     read umqtt makes on its own (CONNACK in connect()) raises Pending, and the
#     sync reads the CONNACK itself when it comes;
#   - QoS 1 publishes, SUBSCRIBE and their acknowledgements are written and
#     matched by the sync (packets below), as they come;
#   - TLS is the link's too (firmware/tls.py's TlsLink): umqtt gets no `ssl`,
#     because its TLS handshake would run blocking inside connect(), seconds of
#     key exchange on a board; there it goes a step per turn like everything else.

import errno
import select
import struct
import time

IPPROTO_TCP, TCP_NODELAY = 6, 1   # the same numbers on Linux and lwIP
MAX_PACKET = 4096                 # longer incoming packets end the connection
READ_CHUNK = 512
SKIP_READS = 64


class Pending(Exception):
    """umqtt asked for bytes that have not arrived yet."""


class Link:
    def __init__(self, sock_mod):
        self._m = sock_mod
        self.s = None
        self.up = False          # the TCP connection is established
        # grown and consumed in place (slice assignment: the ESP32 port has
        # it), not rebuilt per write: a rebuilt buffer is a new allocation of
        # its whole length each time, which a small heap cannot always find
        self.out = bytearray()
        self.inp = bytearray()
        self.received = False    # set by pump() whenever bytes arrive
        self.spoke = False       # bytes have arrived on this link (over TLS: the handshake is done)
        self.last_rx = self.last_ping = 0     # ticks_ms of the last bytes in, last PINGREQ
        self.skip = 0            # bytes of an oversized PUBLISH still to throw away
        self.skip_pid = None     # its packet id, acknowledged once it is gone
        self.dropped = 0         # oversized messages thrown away

    # -- what umqtt.simple calls ---------------------------------------------

    def connect(self, addr):
        s = self._m.socket()
        s.setblocking(False)
        try:
            # umqtt writes a packet in pieces: without it each QoS 1 round
            # trip waits for the peer's delayed ACK
            s.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1)
        except (OSError, AttributeError):
            pass
        self.s = s
        self.poller = select.poll()
        self.poller.register(s, select.POLLIN | select.POLLOUT)
        try:
            s.connect(addr)
        except OSError as e:
            if e.errno not in (errno.EINPROGRESS, errno.EAGAIN):
                raise

    def settimeout(self, t):
        pass     # umqtt >= 1.5 sets one; this link never blocks

    def setblocking(self, flag):
        pass

    def write(self, buf, n=None):
        if isinstance(buf, str):
            buf = buf.encode()       # umqtt writes client id and topics as given
        self.out.extend(buf if n is None else memoryview(buf)[:n])
        return len(buf) if n is None else n

    def read(self, n):
        if len(self.inp) < n:
            raise Pending
        b = bytes(memoryview(self.inp)[:n])
        self.inp[:n] = b""
        return b

    def close(self):
        if self.s is not None:
            self.s.close()
            self.s = None

    # -- what the sync calls -------------------------------------------------

    def pump(self):
        """Send what is queued and take what has arrived, without waiting."""
        if self.s is None:
            raise OSError(errno.ENOTCONN)
        ev = self.poller.poll(0)
        flags = ev[0][1] if ev else 0
        if flags & select.POLLOUT:
            self.up = True
            if self.out:
                n = self.s.write(self.out)
                if n:
                    self.out[:n] = b""
        if flags & (select.POLLIN | select.POLLHUP | select.POLLERR):
            # one chunk a turn; an oversized message being thrown away is
            # drained faster (up to SKIP_READS chunks), it is never kept
            for _ in range(SKIP_READS if self.skip else 1):
                d = self.s.read(READ_CHUNK)
                if d == b"":
                    raise OSError(errno.ECONNRESET)
                if not d:
                    break
                self.received = self.spoke = True
                if self.skip:
                    n = min(self.skip, len(d))
                    self.skip -= n
                    d = d[n:]
                    if not self.skip and self.skip_pid is not None:
                        self._puback(self.skip_pid)
                self.inp.extend(d)
                if not self.skip:
                    break

    def keepalive(self, real_ms, interval_s):
        """A PINGREQ every half interval; OSError once the broker has said
        nothing for one and a half (a half-open connection shows as silence)."""
        if self.received:
            self.received = False
            self.last_rx = real_ms
        if time.ticks_diff(real_ms, self.last_ping) > interval_s * 500:
            self.write(b"\xc0\0")
            self.last_ping = real_ms
        if time.ticks_diff(real_ms, self.last_rx) > interval_s * 1500:
            raise OSError("broker silent")

    def packet_len(self):
        """Length of the whole MQTT packet at the head of the input, or 0."""
        b = self.inp
        n, shift, i = 0, 0, 1
        while True:
            if i >= len(b):
                return 0
            c = b[i]
            n |= (c & 0x7F) << shift
            i += 1
            if not c & 0x80:
                break
            shift += 7
            if i > 4:
                raise OSError("bad MQTT packet length")
        if n > MAX_PACKET:
            return self._drop_oversized(i, n)
        return i + n if len(b) >= i + n else 0

    def _drop_oversized(self, i, n):
        """A message too long to hold: thrown away as it streams in, never
        held in RAM, and acknowledged (QoS 1) so the broker does not send it
        again. Only a PUBLISH may be that long; anything else ends the link."""
        b = self.inp
        if b[0] & 0xF0 != 0x30:
            raise OSError("MQTT packet too long")
        pid = None
        if b[0] & 6:
            if len(b) < i + 2:
                return 0
            t = (b[i] << 8) | b[i + 1]
            if len(b) < i + 2 + t + 2:
                return 0            # wait for the topic and packet id
            pid = (b[i + 2 + t] << 8) | b[i + 3 + t]
        have = len(b) - i
        if have >= n:
            b[:i + n] = b""
            self.skip = 0
        else:
            b[:] = b""
            self.skip = n - have
        self.skip_pid = pid
        self.dropped += 1
        if not self.skip and pid is not None:
            self._puback(pid)
        return 0

    def _puback(self, pid):
        self.write(b"\x40\x02" + struct.pack("!H", pid))


def _length(n):
    out = b""
    while True:
        d = n & 0x7F
        n >>= 7
        out += bytes((d | 0x80 if n else d,))
        if not n:
            return out


def _str(s):
    b = s.encode() if isinstance(s, str) else bytes(s)
    return struct.pack("!H", len(b)) + b


def publish_qos1(topic, msg, pid, retain=False):
    body = _str(topic) + struct.pack("!H", pid) + (msg.encode() if isinstance(msg, str)
                                                   else bytes(msg))
    return bytes((0x32 | (1 if retain else 0),)) + _length(len(body)) + body


def subscribe(topic, pid, qos=1):
    body = struct.pack("!H", pid) + _str(topic) + bytes((qos,))
    return b"\x82" + _length(len(body)) + body


def unsubscribe(topic, pid):
    body = struct.pack("!H", pid) + _str(topic)
    return b"\xa2" + _length(len(body)) + body


class Shim:
    """Stands in for the socket module inside umqtt.simple: its socket is a
    mqttlink.Link and its name lookup answers from the address the sync
    resolved beforehand (a board's getaddrinfo has no timeout)."""

    def __init__(self, sock_mod):
        self._m = sock_mod
        self.addr = None
        self.tls = None      # (SSLContext, host name) for the next connection

    def socket(self, *a):
        if self.tls is None:
            return Link(self._m)
        from firmware.tls import TlsLink      # only a TLS meter loads it
        return TlsLink(self._m, self.tls)

    def getaddrinfo(self, host, port, *a):
        return [(2, 1, 0, "", self.addr)]


def mqtt_module():
    """umqtt.simple, and the errors a broken or hostile peer can make it raise
    (its protocol checks are asserts; short reads index empty bytes). Every
    version (1.3.4 on PyPI, 1.6-1.8 frozen on boards) calls its socket module
    by the module-level name `socket`: the shim goes there, once."""
    from umqtt import simple
    if not isinstance(getattr(simple, "socket"), Shim):
        import socket
        setattr(simple, "socket", Shim(socket))
    # MemoryError: a message the heap cannot take now ends the connection
    # like any broken link (it is sent again), not the meter's loop
    return simple, (OSError, simple.MQTTException, AssertionError, IndexError, TypeError,
                    MemoryError)


def describe(e):
    """A short reason for status and the event log (its detail holds 16
    characters): `OSError 111`, or our own words (`WiFi down`, `broker silent`)."""
    if isinstance(e, OSError) and e.args:
        return ("OSError %d" % e.args[0]) if isinstance(e.args[0], int) else str(e.args[0])
    name = type(e).__name__
    return ("%s %s" % (name, e.args[0])) if e.args else name
