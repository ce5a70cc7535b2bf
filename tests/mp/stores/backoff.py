# Run by tests/test_stores.py

import json
from firmware.sync import Sync, BACKOFF_MIN_MS, BACKOFF_MAX_MS
class App:
    def emit(self, ev, t):
        pass
s = Sync(App(), None, None, "m", b"k", "127.0.0.1", 1)
waits = []
for i in range(12):
    s._fail(0, 0, "x")
    waits.append(s.next_try)
print(json.dumps({"waits": waits, "min": BACKOFF_MIN_MS, "max": BACKOFF_MAX_MS}))
