# Run by tests/test_tokens.py::test_native_siphash_matches_the_plain_one, on the
# 64-bit port and on the 32-bit v1.28 interpreter: the viper SipHash and the
# plain one give the same hash for every message length 0..40, random keys, and
# the reference vector of the SipHash paper (key 00..0f, message 00..0e).

import json
import os

from firmware import siphash
from firmware.siphash_native import halves

vec = halves(bytes(range(16)), bytes(range(15)))
bad = []
for n in range(41):
    for _ in range(6):
        k, m = os.urandom(16), os.urandom(n)
        lo, hi = halves(k, m)
        if hi << 32 | lo != siphash._plain(k, m):
            bad.append(n)
print(json.dumps({"vector": "%08x%08x" % (vec[1], vec[0]), "bad": bad,
                  "used": siphash._native is not None}))
