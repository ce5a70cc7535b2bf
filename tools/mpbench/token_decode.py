# MicroPython: time to decode one OpenPAYGO token at various meter counts.
# argv: cases.json ({"key", "start", "cases": [[count, token], ...]}) [plain];
# prints JSON. plain: the big-integer SipHash instead of the native one.
import json
import sys
import time

from firmware import siphash
from firmware import token as T

if "plain" in sys.argv[2:]:
    siphash._native = None

with open(sys.argv[1]) as f:
    c = json.load(f)
key = bytes.fromhex(c["key"])
out = {}
for count, tok in c["cases"]:
    t = time.ticks_us()
    kind, value, n, used = T.decode(tok, key, count - 2, [count - 2], c["start"])
    out[str(count)] = [time.ticks_diff(time.ticks_us(), t) / 1000, kind, n]
print(json.dumps(out))
