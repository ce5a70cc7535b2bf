# Several simulated meters in one MicroPython process, for tools/fleet.py. Each
# is a Sim of hal/sim/run.py with its own flash image, secrets and load; they
# share one real-time clock and one poll() on their broker sockets. The
# firmware keeps no module-level state, so the meters do not see each other.
#
# $FLEET_FILE names a JSON file: {"seconds": S, "drain_s": D, "meters": [cfg,
# ...]} (each cfg as tools/sim.py would pass it). The meters run S seconds in
# real time; then their clocks stop and for D seconds they only deliver what
# they have queued. One JSON line per meter at the end: its id and final
# figures (Sim.final, credit, pulses).

import json
import os
import select
import sys
import time

from hal.sim.realtime import RealTime, Waiter
from hal.sim.run import Output, Sim

DRAIN_TURN_MS = 20


def run(cfg):
    rt = RealTime(1)
    poll = select.poll()
    out = Output(False, False, quiet=True)
    sims, waiters = [], []
    for m in cfg["meters"]:
        sim = Sim(m, out)
        sim.boot()
        sims.append(sim)
        waiters.append(Waiter(sim, rt, poll=poll))
    end = cfg["seconds"] * 1000
    stop = end + cfg.get("drain_s", 5) * 1000
    due = [time.ticks_ms()] * len(sims)
    owner = {}                      # id(socket) -> meter index
    ready = ()
    while True:
        v = rt.now()
        if v >= stop:
            break
        real = time.ticks_ms()
        for i in range(len(sims)):
            if i not in ready and time.ticks_diff(due[i], real) > 0:
                continue
            sim = sims[i]
            sim.advance(v if v < end else end)      # after end: clocks stand still
            sim.poll_network()
            w = waiters[i]
            d = int(w.delay()) if v < end else DRAIN_TURN_MS
            due[i] = time.ticks_add(real, d)
            if w.watch.sock is not None:
                owner[id(w.watch.sock)] = i
        now = time.ticks_ms()
        wait = min(time.ticks_diff(d, now) for d in due)
        ready = set()
        for obj, _ in poll.poll(max(0, min(wait, 1000))):
            i = owner.get(id(obj))
            if i is not None:
                ready.add(i)
    for sim in sims:
        sim.app.ledger.flush()
        f = sim.final()
        lg = sim.app.ledger
        f.update({"id": sim.app.settings.get("meter_id"), "credit": lg.credit,
                  "pulses": lg.pulses, "topup_count": lg.topup_count})
        sys.stdout.write(json.dumps(f) + "\n")
        if sim.sync is not None:
            sim.sync.disconnect()
        sim.hal.chip.close()
    return 0


if __name__ == "__main__":
    with open(os.getenv("FLEET_FILE")) as f:
        sys.exit(run(json.load(f)))
