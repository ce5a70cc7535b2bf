# Run by tests/test_tariffs.py::test_emergency_credit_and_its_recovery_from_the_next_topup

import json
from world import world, hours

sim, out = world("2026-11-30T10:00:00Z", load=1000, credit=600, price=2000,
                 settings={"emergency_credit": 500, "emergency_threshold": 1000,
                           "debt_share_pct": 25, "debt_cap": 300})
app = sim.app
sim.advance(hours(0.1))
app.button(sim.clock.now_ms())              # the customer asks for emergency credit
after = (app.ledger.credit, app.ledger.emergency, app.credit_state)
try:
    app.take_emergency(sim.clock.now_ms())
    twice = "granted"
except ValueError as e:
    twice = str(e)
app.ledger.set_debt(1000)
credit_before = app.ledger.credit
app.topup("T-1", 2000, sim.clock.now_ms())
lg = app.ledger
print(json.dumps({"after": after, "twice": twice, "gain": lg.credit - credit_before,
                  "emergency": lg.emergency, "debt": lg.debt, "repaid": lg.emergency_repaid,
                  "state": app.credit_state}))
