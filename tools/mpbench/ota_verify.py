# What a meter computes to check a firmware release (firmware/ota.py), timed:
# the head's RSA-3072 signature, every chunk's hash, the bundle's hash, and
# every module's hash as it is unpacked. Prints JSON (ms each).
# argv: release folder (head, bundle), the release key's modulus file
import gc
import hashlib
import json
import sys
import time

from firmware import rsa

folder, keyfile = sys.argv[1], sys.argv[2]
with open(keyfile, "rb") as f:
    key = f.read()
with open(folder + "/head", "rb") as f:
    payload = f.read()
i = payload.rfind(b"\n")
body, sig = payload[:i], bytes.fromhex(payload[i + 1:].decode())
gc.collect()
t = time.ticks_us()
assert rsa.verify(key, body, sig)
sig_ms = time.ticks_diff(time.ticks_us(), t) / 1000
head = json.loads(body)
t = time.ticks_us()
n = 0
whole = hashlib.sha256()
with open(folder + "/bundle", "rb") as f:
    while True:
        b = f.read(head["chunk"])
        if not b:
            break
        d = hashlib.sha256(b).digest()
        assert "".join("%02x" % x for x in d)[:16] == head["hashes"][n]
        whole.update(b)
        n += 1
    assert "".join("%02x" % x for x in whole.digest()) == head["sha256"]
    chunks_ms = time.ticks_diff(time.ticks_us(), t) / 1000
    f.seek(0)
    index = json.loads(f.readline())
    t = time.ticks_us()
    for path, size, digest in index["files"]:
        d = hashlib.sha256(f.read(size)).digest()
        assert "".join("%02x" % x for x in d) == digest, path
    modules_ms = time.ticks_diff(time.ticks_us(), t) / 1000
print(json.dumps({"signature_ms": sig_ms, "chunks_and_bundle_ms": chunks_ms,
                  "modules_ms": modules_ms, "chunks": n, "modules": len(index["files"])}))
