# Every way a power cut can tear one record leaves either nothing a journal
# accepts at that place, or the whole record. For each store's record kinds,
# each write the ring makes for one append is torn at every byte, the torn
# byte takes every half-programmed value (it keeps any nonempty subset of the
# 1 bits it was to lose), the bytes after it stay erased and no later write
# happens; the store's own parser then reads the place. Each distinct torn
# image is tried once. Runs inside MicroPython.
# argv: seed scale (scale multiplies how many random records of each kind)
# Prints one JSON object: per kind, tears tried and torn records accepted.

import json
import sys

from firmware import eventlog, outbox, ring, settings
from firmware import records as R
from hal.sim.rng import Rng

seed, scale = int(sys.argv[1]), int(sys.argv[2])
rng = Rng(seed)
BS = 4096


class Recorder:
    """One NOR sector that notes every write (address, bytes)."""

    def __init__(self):
        self.data = bytearray(b"\xff" * 2 * BS)
        self.ops = []

    def ioctl(self, op, arg):
        if op == 6:
            self.data[arg * BS:(arg + 1) * BS] = b"\xff" * BS
        return {4: 2, 5: BS}.get(op, 0)

    def readblocks(self, block, buf, off=0):
        a = block * BS + off
        buf[:] = self.data[a:a + len(buf)]

    def writeblocks(self, block, buf, off):
        a = block * BS + off
        b = bytes(buf)
        self.ops.append((a, b))
        for i in range(len(b)):
            self.data[a + i] &= b[i]


def tears(magic, parse, max_record, rec, out):
    dev = Recorder()
    rg = ring.SectorRing(dev, magic, "t", max_record)
    rg.open_next(rec)              # a first record, so the one torn is an append
    dev.ops = []
    base = bytearray(dev.data)
    at = rg.tail
    rg.append(rec)
    whole = parse(memoryview(dev.data)[rg.cur * BS:(rg.cur + 1) * BS], at)
    assert whole is not None and whole[2] == at + len(rec), "an intact record must parse"
    img = bytearray(base)
    sec0 = rg.cur * BS
    for a, b in dev.ops:
        for k in range(len(b)):
            t = bytearray(img)
            for i in range(k):
                t[a + i] &= b[i]
            mv = memoryview(t)[sec0:sec0 + BS]
            keep, m = t[a + k], ~b[k] & 0xFF
            sub = m
            while sub:       # every nonempty subset of the bits still to clear
                t[a + k] = keep & (b[k] | sub)
                r = parse(mv, at)
                out[0] += 1
                if r is not None and r[:2] != whole[:2]:
                    out[1] += 1
                sub = (sub - 1) & m
        for i in range(len(b)):
            img[a + i] &= b[i]


def u(n):
    return rng.next32() % n


def run(name, magic, parse, max_record, make, count, res):
    out = [0, 0]
    for i in range(count):
        tears(magic, parse, max_record, make(i), out)
    res[name] = {"tried": out[0], "accepted_torn": out[1]}


res = {}
run("ledger_energy", R.MAGIC, R.parse, R.MAX_RECORD, lambda i: R.energy(1 + i), 255, res)
run("ledger_clock", R.MAGIC, R.parse, R.MAX_RECORD, lambda i: R.clock(rng.next32()),
    150 * scale, res)


def state(i):
    vals = [u(1 << 30) - (1 << 29) if t in "qi" else u(1 << 16) if t != "B" else u(2)
            for _, t in R.FIELDS]
    return R.state(vals, [bytes(u(256) for _ in range(R.REF_LEN)) for _ in range(u(4))])


run("ledger_state", R.MAGIC, R.parse, R.MAX_RECORD, state, 4 * scale, res)
run("outbox_cursor", outbox.MAGIC, outbox.parse, outbox.TELE_LEN,
    lambda i: outbox.cursor(1 + u(1 << 20), u(1 << 20)), 150 * scale, res)
run("outbox_telemetry", outbox.MAGIC, outbox.parse, outbox.TELE_LEN,
    lambda i: outbox.telemetry(u(1 << 20), u(1 << 30), u(1 << 30) - (1 << 29), u(1 << 30),
                               u(20000), u(2), "normal"), 60 * scale, res)
run("event", eventlog.MAGIC, eventlog.parse, eventlog.REC_LEN,
    lambda i: eventlog.encode(u(len(eventlog.KINDS)), 1 + u(1 << 20), u(1 << 30),
                              u(1 << 30) - (1 << 29), "detail %d" % u(1000)), 25 * scale, res)
run("settings", settings.MAGIC, settings.parse, settings.MAX_RECORD,
    lambda i: settings.encode({"price": u(5000), "mqtt_host": "h%d" % u(100)}), 10 * scale, res)
res["tried"] = sum(v["tried"] for v in res.values())
res["accepted_torn"] = sum(v["accepted_torn"] for v in res.values() if isinstance(v, dict))
print(json.dumps(res))
