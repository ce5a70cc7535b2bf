# SipHash-2-4 (Aumasson and Bernstein), 64-bit output, written from the
# published description: 16-byte key, any message; the result is the integer
# v0 ^ v1 ^ v2 ^ v3 after finalisation. The plain version masks integer
# arithmetic to 64 bits, which MicroPython does with big ints on every port;
# where the port compiles viper, firmware/siphash_native.py does it instead.

M = 0xFFFFFFFFFFFFFFFF

try:
    # machine code on 32-bit halves, ~20x faster (firmware/siphash_native.py)
    from firmware.siphash_native import halves as _native
except (ImportError, SyntaxError, ValueError, NotImplementedError):
    _native = None  # type: ignore[assignment]  # no viper emitter: the plain version


def _rotl(x, b):
    return ((x << b) | (x >> (64 - b))) & M


def _rounds(v0, v1, v2, v3, n):
    for _ in range(n):
        v0 = (v0 + v1) & M
        v1 = _rotl(v1, 13) ^ v0
        v0 = _rotl(v0, 32)
        v2 = (v2 + v3) & M
        v3 = _rotl(v3, 16) ^ v2
        v0 = (v0 + v3) & M
        v3 = _rotl(v3, 21) ^ v0
        v2 = (v2 + v1) & M
        v1 = _rotl(v1, 17) ^ v2
        v2 = _rotl(v2, 32)
    return v0, v1, v2, v3


def halves(key, msg):
    """The hash as its (low, high) 32-bit halves: no big integer needed on a
    board when the native version runs."""
    if _native is not None:
        return _native(key, msg)
    h = _plain(key, msg)
    return h & 0xFFFFFFFF, h >> 32


def _plain(key, msg):
    k0 = int.from_bytes(key[:8], "little")
    k1 = int.from_bytes(key[8:16], "little")
    v0 = k0 ^ 0x736F6D6570736575
    v1 = k1 ^ 0x646F72616E646F6D
    v2 = k0 ^ 0x6C7967656E657261
    v3 = k1 ^ 0x7465646279746573
    n = len(msg)
    end = n - n % 8
    for i in range(0, end, 8):
        m = int.from_bytes(msg[i:i + 8], "little")
        v3 ^= m
        v0, v1, v2, v3 = _rounds(v0, v1, v2, v3, 2)
        v0 ^= m
    last = ((n & 0xFF) << 56) | int.from_bytes(bytes(msg[end:]) + b"\x00" * (8 - n + end), "little")
    v3 ^= last
    v0, v1, v2, v3 = _rounds(v0, v1, v2, v3, 2)
    v0 ^= last
    v2 ^= 0xFF
    v0, v1, v2, v3 = _rounds(v0, v1, v2, v3, 4)
    return v0 ^ v1 ^ v2 ^ v3
