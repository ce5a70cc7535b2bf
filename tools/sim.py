#!/usr/bin/env python3
"""Run a simulated prepaid meter on the MicroPython unix port.

The firmware runs inside the `micropython` binary; this host script only checks
the command line and starts it (see README.md for every flag)."""

import argparse
import json
import os
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mp  # noqa: E402

sys.path.insert(0, str(mp.ROOT))
from firmware import calendar, tariffcheck  # noqa: E402  (pure code, runs on CPython too)
from headend import broker  # noqa: E402
from firmware.schema import parse as parse_setting  # noqa: E402
from hal.sim.pulses import parse_profile_csv  # noqa: E402


def non_negative_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a whole number, got %r" % text)
    if v < 0:
        raise argparse.ArgumentTypeError("must not be negative: %r" % text)
    return v


def positive_number(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a number, got %r" % text)
    if not v > 0 or v != v or v == float("inf"):
        raise argparse.ArgumentTypeError("must be a positive number: %r" % text)
    return v


def topup_spec(text):
    parts = text.split(":")
    usage = "top-up is SECONDS:AMOUNT[:REF[:VEND_SEQ]], got %r" % text
    if len(parts) not in (2, 3, 4):
        raise argparse.ArgumentTypeError(usage)
    try:
        amount = int(parts[1])
        vseq = int(parts[3]) if len(parts) == 4 else None
    except ValueError:
        raise argparse.ArgumentTypeError(usage)
    t_ms = seconds(parts[0])
    if amount <= 0:
        raise argparse.ArgumentTypeError("top-up needs SECONDS >= 0 and AMOUNT > 0")
    ref = parts[2] if len(parts) >= 3 else "sim-%s-%d" % (parts[0], amount)
    if not 0 < len(ref.encode()) <= 64:
        raise argparse.ArgumentTypeError("top-up reference must be 1..64 bytes")
    if vseq is not None and not 0 < vseq <= 0xFFFFFFFF:
        raise argparse.ArgumentTypeError("a vend sequence number is 1..4294967295")
    return [t_ms, amount, ref, vseq]


def seconds(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected seconds, got %r" % text)
    if v < 0 or v != v or v == float("inf"):
        raise argparse.ArgumentTypeError("seconds must be >= 0: %r" % text)
    return int(v * 1000)


def iso_time(text):
    try:
        return calendar.parse_iso(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e))


def sync_spec(text):
    t, sep, iso = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError("sync is SECONDS=ISO-TIME, got %r" % text)
    return [seconds(t), iso_time(iso)]


def keys_spec(text):
    t, sep, digits = text.partition(":")
    bare = digits.replace(" ", "").replace("-", "")
    if not sep or not (digits == "button" or (bare.isdigit() and len(bare) <= 20)):
        raise argparse.ArgumentTypeError("keys are SECONDS:DIGITS (groups with spaces or "
                                         "dashes are fine) or SECONDS:button, got %r" % text)
    return [seconds(t), digits]


def outage_spec(text):
    a, sep, b = text.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError("outage is FROM:TO seconds, got %r" % text)
    a, b = seconds(a), seconds(b)
    if b <= a:
        raise argparse.ArgumentTypeError("outage must end after it starts: %r" % text)
    return [a, b]


def host_port(text):
    return list(broker.host_port(text))


def setting_spec(text):
    k, sep, v = text.partition("=")
    if not sep or not k:
        raise argparse.ArgumentTypeError("setting is KEY=VALUE, got %r" % text)
    return [k, v]


def heap_size(text):
    if not re.match(r"^[1-9][0-9]*[kKmM]?$", text):
        raise argparse.ArgumentTypeError("heap is a size like 512k or 2m, got %r" % text)
    return text


def parser():
    p = argparse.ArgumentParser(
        prog="tools/sim.py",
        description="Simulated apartment meter running the real firmware on the "
                    "MicroPython unix port.")
    p.add_argument("--flash", metavar="PATH",
                   help="flash image file; kept between runs (a second run is the "
                        "same meter after a reboot). Default: a blank flash in RAM")
    p.add_argument("--credit", type=non_negative_int, metavar="MINOR_UNITS",
                   help="initial credit of a new meter (default 5000)")
    p.add_argument("--price", type=non_negative_int, metavar="MINOR_UNITS_PER_KWH",
                   help="flat tariff of a new meter (default 2000)")
    load = p.add_mutually_exclusive_group()
    load.add_argument("--load", type=non_negative_int, metavar="WATTS",
                      help="constant load in watts (default 0)")
    load.add_argument("--load-profile", metavar="FILE.csv",
                      help="load profile: lines of time,watts (time in seconds or "
                           "HH:MM of the day; a profile within one day repeats)")
    span = p.add_mutually_exclusive_group()
    span.add_argument("--hours", type=positive_number, metavar="H",
                      help="simulate H hours of virtual time as fast as possible")
    span.add_argument("--days", type=positive_number, metavar="D",
                      help="simulate D days of virtual time as fast as possible")
    p.add_argument("--speed", type=positive_number, metavar="K",
                   help="run in real time, K times faster; with --hours/--days, paced "
                        "this way instead of as fast as possible")
    p.add_argument("--json", action="store_true",
                   help="one JSON object per line: status lines and events")
    p.add_argument("--report", type=positive_number, metavar="SECONDS",
                   help="virtual seconds between status lines (default 900 with "
                        "--hours/--days, 10 in real time)")
    p.add_argument("--seed", type=non_negative_int, default=0, metavar="N",
                   help="seed for load noise and power-cut tearing (default 0)")
    p.add_argument("--noise", type=non_negative_int, default=0, metavar="PCT",
                   help="random load variation, +-PCT percent per minute (default 0)")
    p.add_argument("--topup", type=topup_spec, action="append", default=[],
                   metavar="SECONDS:AMOUNT[:REF[:VEND_SEQ]]",
                   help="add credit at a virtual time (repeatable); a REF or head-end "
                        "vend sequence number already used is rejected")
    p.add_argument("--cut-after-writes", type=non_negative_int, default=0, metavar="N",
                   help="cut the power during the Nth flash write, then exit 3")
    p.add_argument("--per-pulse", action="store_true",
                   help="step the meter at every pulse instead of billing the pulses "
                        "between decision points together (same flash records, slower; "
                        "always so with --cut-after-writes)")
    p.add_argument("--console", action="store_true",
                   help="the terminal (or stdin) is the meter's serial console; "
                        "runs in real time (see --speed) until end of input")
    p.add_argument("--pin", metavar="PIN",
                   help="technician PIN to provision on a meter that has none "
                        "(4-12 digits)")
    p.add_argument("--tariff", metavar="FILE.json", action="append", default=[],
                   help="install the tariff(s) in FILE (one object or a list); each "
                        "takes over at its activation time (docs/tariffs.md)")
    p.add_argument("--start", type=iso_time, metavar="ISO-TIME",
                   help="the meter has a time source (like NTP) and the simulation "
                        "starts at this UTC time, e.g. 2026-12-01T00:00:00Z. Without "
                        "it the meter runs on its own billing clock, unsynced")
    p.add_argument("--sync-at", type=sync_spec, action="append", default=[],
                   metavar="SECONDS=ISO-TIME",
                   help="at a virtual time the time source says ISO-TIME (repeatable)")
    p.add_argument("--button-at", type=seconds, action="append", default=[],
                   metavar="SECONDS", help="press the customer's button (repeatable)")
    p.add_argument("--set", type=setting_spec, action="append", default=[],
                   metavar="KEY=VALUE",
                   help="apply a setting at boot, as a technician would (repeatable)")
    p.add_argument("--plot", metavar="FILE.png",
                   help="with --hours/--days: draw credit, power, price and relay "
                        "state over the run (matplotlib)")
    p.add_argument("--broker", type=host_port, metavar="HOST:PORT",
                   help="MQTT broker of the head-end (needs --secrets once)")
    p.add_argument("--secrets", metavar="FILE",
                   help="the meter's secrets file, as `meterctl provision` writes it")
    p.add_argument("--keys", type=keys_spec, action="append", default=[],
                   metavar="SECONDS:DIGITS",
                   help="type an OpenPAYGO token on the keypad at a virtual time "
                        "(repeatable)")
    p.add_argument("--wifi-down", type=outage_spec, action="append", default=[],
                   metavar="FROM:TO", help="WiFi is down between these virtual seconds "
                                           "(repeatable)")
    p.add_argument("--heap", metavar="SIZE", type=heap_size,
                   help="MicroPython heap size, e.g. 512k or 2m (default: the port's)")
    return p


def config(args):
    if args.console and (args.hours or args.days or args.json):
        raise ValueError("--console runs in real time: no --hours/--days/--json")
    if args.pin is not None and not (4 <= len(args.pin) <= 12 and args.pin.isdigit()):
        raise ValueError("--pin must be 4 to 12 digits")
    if args.noise > 100:
        raise ValueError("--noise must be 0..100")
    if args.load_profile:
        try:
            with open(args.load_profile) as f:
                parse_profile_csv(f.read())
        except OSError as e:
            raise ValueError("--load-profile: %s" % e)
        except ValueError as e:
            raise ValueError("--load-profile %s: %s" % (args.load_profile, e))
    if args.flash:
        d = os.path.dirname(os.path.abspath(args.flash))
        if not os.path.isdir(d):
            raise ValueError("--flash: directory does not exist: %s" % d)
    tariffs = []
    for path in args.tariff:
        try:
            with open(path) as f:
                data = json.load(f)
            for t in data if isinstance(data, list) else [data]:
                tariffs.append(tariffcheck.validate(t))
        except OSError as e:
            raise ValueError("--tariff: %s" % e)
        except ValueError as e:
            raise ValueError("--tariff %s: %s" % (path, e))
    settings = {}
    for k, v in args.set:
        settings[k] = parse_setting(k, v)
    secrets = None
    if args.secrets:
        try:
            with open(args.secrets) as f:
                secrets = json.load(f)
            bytes.fromhex(secrets["key"])
            str(secrets["meter_id"])
            if secrets.get("mqtt_ca"):
                from firmware.tls import der
                der(secrets["mqtt_ca"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ValueError("--secrets %s: not a meter secrets file (%s)" % (args.secrets, e))
    if args.plot and not (args.hours or args.days):
        raise ValueError("--plot needs --hours or --days")
    if args.plot:
        if not args.plot.lower().endswith(".png"):
            raise ValueError("--plot writes a PNG: give FILE.png, got %s" % args.plot)
        d = os.path.dirname(os.path.abspath(args.plot))
        if not os.path.isdir(d):
            raise ValueError("--plot: directory does not exist: %s" % d)
    end = None
    if args.hours:
        end = int(args.hours * 3600000)
    elif args.days:
        end = int(args.days * 86400000)
    report = args.report if args.report else (900 if end is not None else 10)
    return {
        "flash": os.path.abspath(args.flash) if args.flash else None,
        "credit": args.credit, "price": args.price,
        "load": args.load or 0,
        "profile": os.path.abspath(args.load_profile) if args.load_profile else None,
        "end_ms": end, "speed": args.speed or 1, "json": args.json,
        "report_ms": int(report * 1000), "seed": args.seed, "noise": args.noise,
        "topups": args.topup, "cut_after_writes": args.cut_after_writes,
        "per_pulse": args.per_pulse,
        "console": args.console, "pin": args.pin, "tariffs": tariffs,
        "start": args.start, "syncs": args.sync_at,
        "buttons": args.button_at, "settings": settings,
        "broker": args.broker, "secrets": secrets, "wifi_outages": args.wifi_down,
        "keys": args.keys,
        "paced": end is not None and args.speed is not None,
        "live": not args.json and end is None and sys.stdout.isatty() and not args.console,
    }


def lock_image(path):
    """One simulator per flash image: two would overwrite each other's
    records. An exclusive lock on IMAGE.lock, held for the run (the fd stays
    open across the exec into MicroPython, so the lock lives as long as it)."""
    import fcntl
    fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise ValueError("flash image %s is in use by another simulator" % path)
    os.set_inheritable(fd, True)
    return fd


def main(argv=None):
    p = parser()
    args = p.parse_args(argv)
    try:
        cfg = config(args)
    except ValueError as e:
        p.error(str(e))
    if cfg["flash"]:
        try:
            lock_image(cfg["flash"])
        except ValueError as e:
            print("tools/sim.py: %s" % e, file=sys.stderr)
            return 4
    # The configuration travels in the environment: the packaged micropython
    # binary aborts on any argv item of 256 bytes or more.
    env = mp.env()
    cmd = mp.argv(mp.ROOT / "hal" / "sim" / "run.py", heap=args.heap)
    if args.plot:
        return run_and_plot(cmd, env, cfg, args.plot)
    env["SIM_CONFIG"] = json.dumps(cfg)
    sys.stdout.flush()
    if args.heap:
        return run_watching_memory(env, args.heap)
    os.execve(cmd[0], cmd, env)


# With --heap the run may not fit: a bootstrap turns MemoryError (at import or
# later) into exit 5, and the message says what to do (argv items must stay
# under 256 bytes: the packaged micropython aborts on longer ones).
BOOT = ("import sys,os,json\ntry:\n from hal.sim.run import run\n"
        "except MemoryError:\n sys.exit(5)\ntry:\n"
        " sys.exit(run(json.loads(os.getenv('SIM_CONFIG'))))\n"
        "except MemoryError:\n sys.exit(5)\n")


def run_watching_memory(env, heap):
    import subprocess
    rc = subprocess.call([mp.micropython(), "-X", "heapsize=%s" % heap, "-c", BOOT], env=env)
    if rc == 5:
        print("tools/sim.py: out of memory in a %s heap: give --heap more (the smallest "
              "that runs a simulated day is in docs/benchmarks.md)" % heap, file=sys.stderr)
    return rc


def run_and_plot(cmd, env, cfg, path):
    """Run the meter with JSON output (passed through), then draw the run."""
    import subprocess
    from plot import plot
    cfg["json"] = True
    # a status line at least every 1/400 of the run, so the panels show it
    cfg["report_ms"] = min(cfg["report_ms"], max(1000, cfg["end_ms"] // 400))
    env["SIM_CONFIG"] = json.dumps(cfg)
    lines = []
    with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True) as p:
        for line in p.stdout:
            sys.stdout.write(line)
            if line.startswith("{"):
                lines.append(json.loads(line))
    if p.returncode == 0:
        what = " ".join(sys.argv[1:])
        plot(lines, path, "tools/sim.py " + (what if len(what) < 110 else what[:107] + "..."))
    return p.returncode


if __name__ == "__main__":
    sys.exit(main())
