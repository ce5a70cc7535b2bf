# Run by tests/test_sim.py::test_an_image_of_the_first_layout_is_the_same_meter

import json
import sys
from hal.sim.flash import SimFlash
from firmware.ledger import Ledger
f = SimFlash(sys.argv[1], 4096, 16)
lg = Ledger(f, 1600, 2000, 4321)
lg.consume(7)
f.close()
print(json.dumps({"ok": 1}))
