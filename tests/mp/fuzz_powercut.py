# Power-cut fuzz of the ledger, run inside MicroPython.
# argv: seed cuts blocks block_size max_ops_between_cuts
# A random mix of pulses, top-ups and replayed top-ups runs against the ledger
# while the simulated flash cuts the power at a random write or erase. After
# every cut the ledger is rebooted from flash and checked against the truth.
# Prints one JSON object; "violations" must be empty.

import json
import sys

from firmware.ledger import Ledger, Rejected, ref_digest
from hal.sim.flash import PowerCut, SimFlash
from hal.sim.rng import Rng

seed, cuts, blocks, bs, span = [int(a) for a in sys.argv[1:6]]
# rich: also price changes, standing charges, emergency credit, debt, clock
RICH = len(sys.argv) > 6 and sys.argv[6] == "rich"
IMP, PRICE, C0 = 1600, 1999, 10 ** 7
rng = Rng(seed)
f = SimFlash(None, bs, blocks, seed=seed, cut_erases=True)
acked = []          # the latest acknowledged top-ups [(ref, amount)]
acked_sum = 0       # all acknowledged top-ups
inflight = None     # a top-up whose call was cut before it returned
true_pulses = 0
bad = []
st = {"cuts": 0, "worst_loss_pulses": 0, "replays_rejected": 0,
      "inflight_landed": 0, "inflight_retried": 0, "boots": 0, "topups": 0}
serial = 0


def check(lg):
    global true_pulses
    where = "cut %d: " % st["cuts"]
    extra = inflight[1] if inflight else 0
    money_in = C0 + lg.topups + lg.emergency_given + lg.adjusted
    money_out = (lg.credit + lg.billed + lg.standing_total + lg.debt_recovered
                 + lg.emergency_repaid)
    if money_in != money_out:
        bad.append(where + "money not conserved: in %d, out %d" % (money_in, money_out))
    if lg.emergency != lg.emergency_given - lg.emergency_repaid or lg.emergency < 0:
        bad.append(where + "emergency credit books do not balance")
    if not RICH and (lg.billed != lg.pulses * PRICE // IMP
                     or lg.rem != lg.pulses * PRICE % IMP):
        bad.append(where + "billing not exact for %d pulses" % lg.pulses)
    if not acked_sum <= lg.topups <= acked_sum + extra:
        bad.append(where + "top-ups %d, acknowledged %d (+%d in flight)"
                   % (lg.topups, acked_sum, extra))
    loss = true_pulses - lg.pulses
    if loss < 0 or loss > lg.flush_every:
        bad.append(where + "energy loss %d pulses (bound %d)" % (loss, lg.flush_every))
    if loss > st["worst_loss_pulses"]:
        st["worst_loss_pulses"] = loss
    true_pulses = lg.pulses  # what was lost is lost; measure each cut alone


def ack(t):
    global acked_sum
    acked.append(t)
    acked_sum += t[1]
    st["topups"] += 1
    if len(acked) > 32:
        acked.pop(0)


def session():
    """One power-on: boot, settle the in-flight top-up, run until the cut."""
    global inflight, true_pulses, serial
    lg = Ledger(f, IMP, PRICE, C0)
    st["boots"] += 1
    check(lg)
    if inflight:
        ref, amount = inflight
        if ref_digest(ref) in lg.refs:
            st["inflight_landed"] += 1
        else:
            st["inflight_retried"] += 1
            lg.topup(ref, amount, 30 if RICH else 0, 700)   # the head-end sends it again
        ack(inflight)
        inflight = None
    while True:
        op = rng.below(100)
        if op < 90:
            for _ in range(1 + rng.below(3)):   # pulses arrive one by one
                true_pulses += 1      # the energy flowed whatever flash does
                lg.consume(1)
        elif RICH and op < 93:
            k = rng.below(5)
            if k == 0:
                lg.set_price(1 + rng.below(5000))
            elif k == 1:
                lg.standing_charge(lg.standing_day + 1, rng.below(300))
            elif k == 2:
                lg.take_emergency(1 + rng.below(2000))
            elif k == 3:
                lg.set_debt(rng.below(10000))
            else:
                lg.note_time(lg.time_s + rng.below(2000), True)
        elif op < 97:
            serial += 1
            inflight = ("TX-%d-%d" % (seed, serial), 1 + rng.below(5000))
            if RICH:
                lg.topup(inflight[0], inflight[1], 30, 700)
            else:
                lg.topup(*inflight)
            ack(inflight)
            inflight = None
        elif acked:
            ref, amount = acked[rng.below(len(acked))]
            credit = lg.credit
            try:
                lg.topup(ref, amount)
                bad.append("replayed top-up %s was applied again" % ref)
            except Rejected:
                st["replays_rejected"] += 1
            if lg.credit != credit:
                bad.append("rejected replay changed credit")


while st["cuts"] < cuts:
    f._ops = 0
    f.cut_after_writes = 1 + rng.below(span)
    try:
        session()
    except PowerCut:
        st["cuts"] += 1
    except Exception as e:  # a flash error or a fault is a failure of the ledger
        bad.append("cut %d: %r" % (st["cuts"], e))
        break
f.cut_after_writes = 0
if not bad:
    check(Ledger(f))
st["erases"] = f.erases
st["violations"] = bad[:20]
print(json.dumps(st))
