# MicroPython: decode a batch of tokens with firmware.token.
# argv: cases.json -> prints one JSON list of [kind, value, count, used].
# A case is either independent {"token", "key", "count", "used", "start", "restricted"}
# or a sequence {"seq": [tokens...], "key", "start", "restricted"} decoded in
# order from count 0 with used [0], the state carried from token to token.
import json
import sys

from firmware import token as T

with open(sys.argv[1]) as f:
    cases = json.load(f)
out = []
for c in cases:
    key = bytes.fromhex(c["key"])
    if "seq" in c:
        count, used, steps = 0, [0], []
        for tok in c["seq"]:
            kind, value, n, used = T.decode(tok, key, count, used, c["start"], c["restricted"])
            if n is not None and n > count:
                count = n
            steps.append([kind, value, n, sorted(used)])
        out.append(steps)
        continue
    try:
        kind, value, n, used = T.decode(c["token"], key, c["count"], c["used"], c["start"],
                                        c["restricted"])
        out.append([kind, value, n, sorted(used)])
    except ValueError as e:
        out.append(["error", str(e)])
# one line, written piece by piece: a single dumps of it needs a block of
# ~120 KB, which a fragmented heap may not have
sys.stdout.write("[")
for i, r in enumerate(out):
    sys.stdout.write(("," if i else "") + json.dumps(r))
sys.stdout.write("]\n")
