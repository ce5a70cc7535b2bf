"""A test CA and the certificates the TLS tests need, made fresh each run:
a good broker certificate for `localhost`, an expired one, one for another
host, and a second CA that signed none of them. EC P-256, as a board would
be given (its handshake is the cheapest mbedtls does)."""

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

DAY = datetime.timedelta(days=1)


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject, key, issuer, issuer_key, start, end, ca=False, host=None):
    b = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(start).not_valid_after(end))
    if ca:
        b = b.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    if host:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def make(folder):
    """Writes NAME.crt (PEM) and NAME.key for ca, other_ca, good, expired,
    wrong_host and client into folder; returns {name: (crt path, key path)}."""
    now = datetime.datetime.now(datetime.timezone.utc)
    out = {}

    def save(name, cert, key):
        crt, k = folder / (name + ".crt"), folder / (name + ".key")
        crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        k.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.TraditionalOpenSSL,
                                        serialization.NoEncryption()))
        out[name] = (crt, k)

    keys = {n: ec.generate_private_key(ec.SECP256R1())
            for n in ("ca", "other_ca", "good", "expired", "wrong_host", "client")}
    for n, cn in (("ca", "meter test CA"), ("other_ca", "someone else's CA")):
        save(n, _cert(cn, keys[n], cn, keys[n], now - DAY, now + 3650 * DAY, ca=True), keys[n])
    ca_key = keys["ca"]
    leaves = (("good", "localhost", now - DAY, now + 365 * DAY),
              ("expired", "localhost", now - 30 * DAY, now - DAY),
              ("wrong_host", "broker.elsewhere.example", now - DAY, now + 365 * DAY),
              ("client", "headend", now - DAY, now + 365 * DAY))
    for n, host, start, end in leaves:
        save(n, _cert(host, keys[n], "meter test CA", ca_key, start, end, host=host), keys[n])
    return out
