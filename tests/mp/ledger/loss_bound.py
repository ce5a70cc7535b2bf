# Run by tests/test_ledger.py::test_loss_bound_sets_how_often_energy_is_written

import json
from firmware.ledger import Ledger
from ledgerkit import flash

out = {}
for bound in (1000, 625, 10000, 100):
    f = flash()
    a = Ledger(f, 1600, 2000, 10 ** 6, loss_bound_mwh=bound)
    w = f.writes
    worst = 0
    for i in range(200):
        a.consume(1)
        worst = max(worst, a.pending)
    out[str(bound)] = [a.flush_every, f.writes - w, worst]
print(json.dumps(out))
