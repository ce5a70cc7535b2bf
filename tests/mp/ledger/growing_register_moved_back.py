# Run by tests/test_ledger.py::test_a_record_that_would_move_a_growing_register_back_is_refused

import json
from firmware import records as R
from firmware.ledger import Ledger
from ledgerkit import flash, view

out = {}
for case in ("clock", "state"):
    f = flash(4, 4096)
    a = Ledger(f, 1600, 2000, 100000)
    a.note_time(2000000, False)
    a.topup("T-1", 700)
    want = view(a)
    if case == "clock":
        a.journal.append(R.clock(1000))                 # back to 1970
    else:
        v = a._values()
        v[R.NAMES.index("topups")] = 0               # the top-up undone
        v[R.NAMES.index("credit")] = -5000000
        a.journal.append(R.state(v, []))
    for i in range(3):
        a.consume(1)
    a.flush()
    b = Ledger(f)
    out[case] = [view(b) == dict(want, created=False), b.time_s, len(b.damage)]
print(json.dumps(out))
