# firmware/transient.py on the interpreter: a transient module is gone after
# the call (sys.modules and its package), comes back whole for the next one,
# and a resident module loaded during a call stays loaded.
import gc
import json
import sys

import firmware
from firmware import cmdbase, transient  # noqa: F401  (resident on a meter, as here)

gc.collect()
before = gc.mem_alloc()
first = transient.call("firmware.schema", "parse", "mqtt_port", "1884")
gc.collect()
after = gc.mem_alloc()
out = {
    "value": first,
    "gone": "firmware.schema" not in sys.modules and not hasattr(firmware, "schema"),
    "again": transient.call("firmware.schema", "parse", "mqtt_port", "1885"),
    "kept_bytes": after - before,
}
try:
    transient.call("firmware.schema", "parse", "mqtt_port", "0")
except ValueError as e:
    out["error"] = str(e)
out["gone_after_error"] = "firmware.schema" not in sys.modules
# policy is resident (not TRANSIENT): loaded by the check of a friendly period, kept
transient.call("firmware.schema", "parse", "friendly_nights", "22:00-06:00")
out["policy_kept"] = "firmware.policy" in sys.modules
print(json.dumps(out))
