"""TLS figures for `make bench`: the meter link's handshake with a real
Mosquitto TLS listener on loopback (EC P-256 certificates made for the run),
on the 64-bit unix port (the 32-bit one has no ssl module): time from TCP
connect to CONNACK; the GC heap it needs, sampled each turn and as the
smallest -X heapsize that still completes (modules compiled, so the compiler
does not set it), against a plain connection's; and mbedtls' own memory,
which the unix port takes from the C heap, as the peak resident size over a
plain run's."""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mp  # noqa: E402

sys.path.insert(0, str(mp.ROOT / "tests"))
from certs import make  # noqa: E402
from conftest import Broker  # noqa: E402

RUNS = 10
SCRIPT = mp.ROOT / "tools" / "mpbench" / "tls_handshake.py"


def handshake(ca, port, heap=None, mpy=None):
    """One handshake; mpy: a folder of compiled modules to import (then the
    smallest heap is the link's, not the compiler's)."""
    env = mp.env()
    if mpy:
        env["MICROPYPATH"] = ".frozen:%s" % mpy     # ssl.py is frozen in the port
    r = subprocess.run(mp.argv(SCRIPT, ca, port, "localhost", heap=heap), env=env,
                       capture_output=True, text=True, timeout=60)
    if r.returncode:
        return None
    return json.loads(r.stdout.strip().splitlines()[-1])


def smallest_heap(works):
    """The smallest -X heapsize (KiB, 2 KiB steps) with which works(heap) succeeds."""
    lo, hi = 4, 256
    while hi - lo > 2:
        mid = (lo + hi) // 2
        if works("%dk" % mid):
            hi = mid
        else:
            lo = mid
    return hi


def run():
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        certs = make(d)
        from cryptography import x509
        from cryptography.hazmat.primitives.serialization import Encoding
        ca = d / "ca.der"
        ca.write_bytes(x509.load_pem_x509_certificate(certs["ca"][0].read_bytes())
                       .public_bytes(Encoding.DER))
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        b = Broker(d, "listener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\n"
                   % (port, certs["ca"][0], certs["good"][0], certs["good"][1])).start()
        try:
            runs = [handshake(ca, port) for _ in range(RUNS)]
            plains = [handshake("-", b.port) for _ in range(3)]
            if None in runs or None in plains:
                raise SystemExit("a handshake failed")
            from build_mpy import build
            mpy = d / "mpy"
            build(mpy)
            least = smallest_heap(lambda heap: handshake(ca, port, heap, mpy))
            plain = smallest_heap(lambda heap: handshake("-", b.port, heap, mpy))
        finally:
            b.stop()
    ms = sorted(r["ms"] for r in runs)
    out = {"median_ms": ms[len(ms) // 2], "max_ms": ms[-1],
           "turns": sorted(r["turns"] for r in runs)[len(runs) // 2],
           "peak_heap_kib": round(max(r["peak_heap"] for r in runs) / 1024, 1),
           # mbedtls' own memory (C heap on the unix port): peak RSS over a plain run's
           "tls_rss_kib": max(r["peak_rss_kib"] for r in runs)
           - min(r["peak_rss_kib"] for r in plains),
           "min_heap_kib": least, "min_heap_plain_kib": plain}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    run()
