# Run by tests/test_meter.py

import json
from firmware.meter import Meter, mwh, wh_text
m = Meter(1600)
out = {"first": m.update(100, 0)}          # first reading only sets the base
t, n = 0, 0
for i in range(10):
    t += 2250                                # a pulse every 2.25 s = 1000 W
    n += m.update(101 + i, t)
out["n"] = n
out["p"] = m.power_w(t)
out["p_overdue"] = m.power_w(t + 22500)      # next pulse 10x overdue: <= 100 W
m.update(112, t + 1000)                      # two pulses in one poll
out["p_two"] = m.power_w(t + 1000)
m.forget_power()
out["p_forgot"] = m.power_w(t + 1000)
try:
    m.update(5, t + 2000)
    out["back"] = "accepted"
except ValueError:
    out["back"] = "error"
out["wh"] = [wh_text(1, 1600), wh_text(38400, 1600), wh_text(1, 3)]
out["mwh"] = mwh(3, 1000)
print(json.dumps(out))
