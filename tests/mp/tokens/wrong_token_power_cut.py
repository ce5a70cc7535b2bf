# Run by tests/test_tokens.py::test_a_wrong_token_cut_by_a_power_cut_is_counted_or_never_looked_at

import json
import sys
from world import world
from firmware import token as T
from hal.sim.flash import PowerCut
decoded = []
real = T.decode
def spy(*a):
    decoded.append(1)
    return real(*a)
T.decode = spy
out = []
for k in range(1, 8):
    sim, _ = world(None, credit=0, settings={"token_key": sys.argv[1]})
    f = sim.hal.chip
    del decoded[:]
    f.cut_after_writes = f._ops + k          # the k-th write of the attempt
    try:
        sim.app.enter_token("123456789", 0)
        cut = False
    except ValueError:
        cut = False
    except PowerCut:
        cut = True
    f.cut_after_writes = 0
    sim.boot()
    out.append([k, cut, len(decoded), sim.app.ledger.tok_fails])
print(json.dumps(out))
