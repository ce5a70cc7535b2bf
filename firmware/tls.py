# TLS for the MQTT link: the broker's CA, pinned, and the reasons a
# handshake failed, short enough for status and the event log.
#
# The CA certificate (DER) is kept by the HAL (hal.ca: a file beside the
# firmware on a board); the settings keep its SHA-256 (`mqtt_ca`), written
# together by provisioning (firmware/pinned.py). A CA that does not match its
# pin is not used: the meter stays offline rather than trust a certificate
# someone swapped in, and a meter set for TLS never falls back to plain text.
#
# Also run by CPython (tools/deploy.py): nothing MicroPython-only at import.

import binascii
import select

from firmware.mqttlink import Link
from firmware.pinned import load, pin


def der(pem):
    """The DER bytes of the first certificate in PEM text, or ValueError."""
    begin, end = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"
    i, j = pem.find(begin), pem.find(end)
    if i < 0 or j < i:
        raise ValueError("not a PEM certificate")
    body = "".join(pem[i + len(begin):j].split())
    try:
        return binascii.a2b_base64(body)      # CPython's binascii.Error is a ValueError
    except ValueError:
        raise ValueError("not a PEM certificate")


def install(store, pem):
    """Provisioning: the CA into the store; returns the pin for the settings."""
    d = der(pem)
    store.write(d)
    return pin(d)


def context(store, pinned):
    """An ssl.SSLContext that trusts only the pinned CA and checks the
    broker's certificate (chain, dates, host name); OSError with a short
    reason when there is none to be had (firmware/pinned.py's store)."""
    d = load(store, pinned, "TLS CA")
    try:
        import ssl
    except ImportError:
        raise OSError("TLS unavailable")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    # the client default already (extmod/modtls_mbedtls.c), said anyway: it
    # is the point; the ESP32 stubs lack the attribute
    ctx.verify_mode = ssl.CERT_REQUIRED  # type: ignore[attr-defined]
    try:
        ctx.load_verify_locations(cadata=d)
    except ValueError:
        raise OSError("TLS bad CA")
    return ctx


# mbedtls' verify texts (mbedtls_x509_crt_verify_info, raised by MicroPython
# as ValueError) -> what status and the event log say (16 characters at most)
_VERIFY = (("expired", "TLS cert expired"), ("future", "TLS cert future"),
           ("CN", "TLS wrong host"), ("trusted CA", "TLS wrong CA"),
           ("revoked", "TLS cert revoked"))


def reason(e):
    """A failed handshake, in a few words."""
    if isinstance(e, ValueError):
        text = str(e)
        for key, why in _VERIFY:
            if key in text:
                return why
        return "TLS cert refused"
    if isinstance(e, OSError) and e.args and isinstance(e.args[0], int) and e.args[0] < 0:
        return "TLS err -0x%04x" % -e.args[0]       # an mbedtls error code
    return None


class TlsLink(Link):
    """firmware/mqttlink.py's link with TLS over its socket: wrapped once TCP
    is up, the handshake a step in each read and write that follows, never
    waiting (umqtt's own TLS would do it inside connect(), blocking)."""

    def __init__(self, sock_mod, tls):
        """tls: (ssl.SSLContext, the broker's host name)."""
        Link.__init__(self, sock_mod)
        self.tls = tls

    def pump(self):
        if self.s is None or self.up:
            try:
                return Link.pump(self)
            except ValueError as e:          # mbedtls refused the certificate
                raise OSError(reason(e))
            except OSError as e:
                why = reason(e)
                if why is None and not self.spoke and e.args and isinstance(e.args[0], int):
                    why = "TLS failed %d" % e.args[0]    # before any data: the handshake
                if why is None:
                    raise
                raise OSError(why)
        ev = self.poller.poll(0)
        if ev and ev[0][1] & select.POLLOUT:
            ctx, host = self.tls
            self.poller.unregister(self.s)
            self.s = ctx.wrap_socket(self.s, server_hostname=host,
                                     do_handshake_on_connect=False)
            self.poller.register(self.s, select.POLLIN | select.POLLOUT)
            self.up = True
        elif ev and ev[0][1] & (select.POLLERR | select.POLLHUP):
            Link.pump(self)                   # the refusal, as a plain link reports it
