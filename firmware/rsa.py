# RSA signature check, PKCS#1 v1.5 with SHA-256 (RFC 8017 8.2.2), e = 65537:
# how a meter knows a firmware release comes from the holder of the release
# key. Pure MicroPython: one pow() of the key's size; RSA-3072 takes ~5.5 ms
# on the 32-bit interpreter on a PC (tools/bench_ota.py), not measured on a
# board. Verifying needs no secret, so the meter holds only the public half.

import hashlib

E = 65537
# DER of DigestInfo{sha256, NULL} before the 32-byte hash (RFC 8017 9.2 note 1)
SHA256_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


def verify(modulus, message, sig):
    """True if sig (bytes, as long as the modulus) signs message under the
    public key (modulus: big-endian bytes, e = 65537)."""
    k = len(modulus)
    if len(sig) != k or k < 256:          # nothing shorter than RSA-2048
        return False
    n = int.from_bytes(modulus, "big")
    s = int.from_bytes(sig, "big")
    if s >= n:
        return False
    em = pow(s, E, n).to_bytes(k, "big")
    t = SHA256_INFO + hashlib.sha256(message).digest()
    # 00 01 FF..FF 00 T: padding of at least 8 bytes of FF
    return em == b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t
