# SipHash-2-4 as machine code (MicroPython's viper emitter): each 64-bit word
# is two 32-bit halves, so no value ever becomes a big integer, on a board
# (32-bit words) or on a 64-bit host alike (every half is masked to 32 bits).
# firmware/siphash.py uses it where the port compiles viper and falls back to
# its plain version elsewhere; tests/test_tokens.py holds the two to the same
# results. Shipped as source, never as .mpy: the port compiles it for its own
# CPU at import (tools/build_mpy.py, boards/manifest.py).

import struct

import micropython

# v0..v3's initial constants ("somepseudorandomlygeneratedbytes"), as the
# little-endian 32-bit halves low, high of each
IV = b"uespemos" b"modnarod" b"arenegyl" b"setybdet"


@micropython.viper
def _sip(s: ptr32, m: ptr32, nb: int):
    """s: the key's 4 halves then IV's 8; m: nb padded 8-byte blocks (the
    last carries the length). The hash's low, high halves go to s[0], s[1]."""
    f = (uint(0xFFFF) << 16) | uint(0xFFFF)
    a0 = uint(s[4]) ^ uint(s[0])
    a1 = uint(s[5]) ^ uint(s[1])
    b0 = uint(s[6]) ^ uint(s[2])
    b1 = uint(s[7]) ^ uint(s[3])
    c0 = uint(s[8]) ^ uint(s[0])
    c1 = uint(s[9]) ^ uint(s[1])
    d0 = uint(s[10]) ^ uint(s[2])
    d1 = uint(s[11]) ^ uint(s[3])
    i = 0
    rounds = 0
    w0 = uint(0)
    w1 = uint(0)
    while True:
        if rounds == 0:
            if i < nb:
                w0 = uint(m[2 * i])
                w1 = uint(m[2 * i + 1])
                d0 ^= w0
                d1 ^= w1
                rounds = 2
            elif i == nb:
                c0 ^= uint(0xFF)
                rounds = 4
            else:
                break
        # one SipRound on (hi, lo) pairs: add with carry, rotate, xor
        lo = (a0 + b0) & f
        a1 = (a1 + b1 + (uint(1) if lo < a0 else uint(0))) & f
        a0 = lo
        t = ((b0 << 13) | (b1 >> 19)) & f
        b1 = (((b1 << 13) | (b0 >> 19)) & f) ^ a1
        b0 = t ^ a0
        t = a0
        a0 = a1
        a1 = t
        lo = (c0 + d0) & f
        c1 = (c1 + d1 + (uint(1) if lo < c0 else uint(0))) & f
        c0 = lo
        t = ((d0 << 16) | (d1 >> 16)) & f
        d1 = (((d1 << 16) | (d0 >> 16)) & f) ^ c1
        d0 = t ^ c0
        lo = (a0 + d0) & f
        a1 = (a1 + d1 + (uint(1) if lo < a0 else uint(0))) & f
        a0 = lo
        t = ((d0 << 21) | (d1 >> 11)) & f
        d1 = (((d1 << 21) | (d0 >> 11)) & f) ^ a1
        d0 = t ^ a0
        lo = (c0 + b0) & f
        c1 = (c1 + b1 + (uint(1) if lo < c0 else uint(0))) & f
        c0 = lo
        t = ((b0 << 17) | (b1 >> 15)) & f
        b1 = (((b1 << 17) | (b0 >> 15)) & f) ^ c1
        b0 = t ^ c0
        t = c0
        c0 = c1
        c1 = t
        rounds -= 1
        if rounds == 0:
            if i < nb:
                a0 ^= w0
                a1 ^= w1
            i += 1
    s[0] = a0 ^ b0 ^ c0 ^ d0
    s[1] = a1 ^ b1 ^ c1 ^ d1


def halves(key, msg):
    """SipHash-2-4 of msg under the 16-byte key: (low, high) 32-bit halves."""
    n = len(msg)
    m = bytearray(msg)
    m.extend(bytes(7 - n % 8))
    m.append(n & 0xFF)
    s = bytearray(key[:16])
    s.extend(IV)
    _sip(s, m, len(m) // 8)      # type: ignore[arg-type]  # viper takes a buffer as ptr32
    return struct.unpack_from("<II", s)
