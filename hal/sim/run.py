# The simulated meter's main program, run inside the MicroPython unix port by
# tools/sim.py (which parses and checks the command line and passes it here as
# JSON in $SIM_CONFIG). It is the imperative shell around firmware.app for the sim board:
# virtual time, the load, scheduled top-ups, output, and power cuts.
#
# Exit codes: 0 done, 3 power cut injected, 4 ledger fault.

import json
import sys
import time

from boards import sim as board
from firmware.app import MeterApp
from firmware.calendar import format_iso
from firmware.ledger import LedgerFault
from firmware.ring import RingFault
from firmware.schema import PROVISIONED
from firmware.shellcore import BUTTON, CLOCK, KEYS, TOPUP, ShellCore
from firmware.meter import mwh
from hal.sim.flash import PowerCut
from hal.sim.pulses import LoadProfile, parse_profile_csv


def hms(ms):
    s = ms // 1000
    d, s = divmod(s, 86400)
    txt = "%02d:%02d:%02d" % (s // 3600, s // 60 % 60, s % 60)
    return ("%dd %s" % (d, txt)) if d else txt


def json_line(pairs):
    # MicroPython dicts do not keep insertion order; readers like t first.
    return "{" + ", ".join("%s: %s" % (json.dumps(k), json.dumps(v))
                           for k, v in pairs) + "}"


class Output:
    """Status lines and events on stdout; with quiet (console mode, where
    stdout is the serial console) only a power cut is reported, on stderr."""

    def __init__(self, as_json, live, quiet=False):
        self.json = as_json
        self.live = live
        self.quiet = quiet
        self._open_line = False

    def _line(self, text):
        if self._open_line:
            sys.stdout.write("\n")
            self._open_line = False
        sys.stdout.write(text + "\n")

    def event(self, ev, t_ms, always=False):
        if self.quiet:
            if always:
                sys.stderr.write("%s\n" % ev)
            return
        if self.json:
            keys = sorted(k for k in ev if k != "event")
            self._line(json_line([("t", t_ms / 1000), ("event", ev["event"])]
                                 + [(k, ev[k]) for k in keys]))
        else:
            rest = " ".join("%s=%s" % (k, ev[k]) for k in ev if k != "event")
            self._line("[%s] %s %s" % (hms(t_ms), ev["event"], rest))

    def status(self, st, t_ms, extra=None):
        if self.quiet:
            return
        if self.json:
            pairs = [("t", t_ms / 1000), ("energy_wh", st["energy_mwh"] / 1000),
                     ("credit", st["credit"]), ("relay", st["relay"]),
                     ("power_w", st["power_w"]), ("pulses", st["pulses"]),
                     ("price", st["price"]), ("state", st["state"]),
                     ("relay_state", st["relay_state"]), ("time", format_iso(st["wall"]))]
            if extra:
                pairs += [(k, extra[k]) for k in sorted(extra)]
            self._line(json_line(pairs))
            return
        e = st["energy_mwh"]
        text = "t=%s  energy=%d.%03d Wh  power=%d W  credit=%d  relay=%s" % (
            hms(t_ms), e // 1000, e % 1000, st["power_w"], st["credit"], st["relay"])
        if extra:
            text += "  " + " ".join("%s=%s" % (k, extra[k]) for k in sorted(extra))
        if self.live:
            sys.stdout.write("\r" + text + "   ")
            self._open_line = True
        else:
            self._line(text)


class UsageError(Exception):
    """A command-line request the meter cannot take (exit 2, nothing run on)."""


class Board:
    """The sim board with some constants replaced."""

    def __init__(self, **over):
        for k in dir(board):
            if not k.startswith("_"):
                setattr(self, k, getattr(board, k))
        for k in over:
            setattr(self, k.upper(), over[k])


class Sim:
    def __init__(self, cfg, out):
        self.cfg = cfg
        self.out = out
        if cfg.get("profile"):
            with open(cfg["profile"]) as f:
                load = parse_profile_csv(f.read())
        else:
            load = LoadProfile.constant(cfg.get("load", 0))
        # Tests may fit a board with another meter constant (fewer pulses per
        # simulated month); the simulated IC and the firmware then agree on it.
        self.board = board
        if cfg.get("imp"):
            self.board = Board(imp_per_kwh=cfg["imp"])
        self.hal = self.board.build_hal(
            cfg.get("flash"), load, cfg.get("seed", 0), cfg.get("noise", 0),
            cfg.get("cut_after_writes", 0), cfg.get("cut_erases", False),
            imp_per_kwh=self.board.IMP_PER_KWH)
        self.clock = self.hal.clock
        # Scheduled inputs, into the shell core's one queue (same-time ones
        # in the order given). wall0 is the time source (NTP on a device): wall
        # seconds at virtual time 0, or None when the meter has none and runs
        # on its billing clock alone.
        self.core = core = ShellCore(None, wall0=cfg.get("start"))   # the app: at boot
        for t, wall in cfg.get("syncs", []):
            core.at(t, CLOCK, wall)
        for q in cfg.get("topups", []):            # [t_ms, amount, ref(, vend seq)]
            core.at(q[0], TOPUP, (q[1], q[2], q[3] if len(q) > 3 else None))
        for t, digits in cfg.get("keys", []):      # typed on the keypad
            core.at(t, KEYS, digits)
        for t in cfg.get("buttons", []):
            core.at(t, BUTTON)
        self.report_ms = cfg.get("report_ms", 900000)
        self.next_report = self.report_ms
        self.app = None
        self.boot_pulses = None
        self.sync = None
        self.outbox = None
        self.max_stall_ms = 0
        self.per_pulse = bool(cfg.get("per_pulse") or cfg.get("cut_after_writes"))
        self.hal.wifi.outages = cfg.get("wifi_outages", [])

    def boot(self):
        """Power on (or reboot): the firmware starts again from flash."""
        first = self.app is None
        now = self.clock.now_ms()
        self.app = self.core.app = MeterApp(
            self.board, self.hal, self.out.event, now, self.cfg.get("credit"),
            self.cfg.get("price"), self.core.wall(now))
        # --per-pulse is the reference: a step at every pulse and every minute
        self.app.minute_wakes = self.per_pulse
        if self.boot_pulses is None:
            self.boot_pulses = self.app.ledger.pulses
            self.hal.pulses.pulses = 0
        pin = self.cfg.get("pin")
        if pin and not self.app.auth.has_pin():
            # what provisioning does on a real meter: a PIN only for a meter without one
            self.app.auth.set_pin(pin)
            self.app.emit({"event": "config", "detail": "pin"}, now)
        if first:
            for tf in self.cfg.get("tariffs", []):
                have = max(t["version"] for t in self.app.tariffs())
                if tf["version"] <= have:
                    raise UsageError("--tariff: version %d is not above the meter's %d "
                                     "(installed already? give it a higher version)"
                                     % (tf["version"], have))
                self.app.add_tariff(tf, now)
        if self.cfg.get("settings"):
            self.app.settings.save(self.cfg["settings"])
            self.app.refresh(now)
        self._provision(now)
        self.out.status(self.app.status(now), now)

    def _provision(self, now):
        """Secrets from `meterctl provision` and --broker, as provisioning
        writes them on a real meter; then the sync, if a broker is set."""
        app = self.app
        sec = self.cfg.get("secrets") or {}
        changes = {}
        for k, key in PROVISIONED.items():
            # present counts, not truthy: token_restricted 0 turns it off
            if k in sec and sec[k] is not None and sec[k] != "" and \
                    app.settings.get(key) != sec[k]:
                changes[key] = sec[k]
        if sec.get("mqtt_ca"):
            # the broker's CA: the certificate to the HAL's store, its pin to the settings
            from firmware.tls import install
            pin = install(self.hal.ca, sec["mqtt_ca"])
            if app.settings.get("mqtt_ca") != pin:
                changes["mqtt_ca"] = pin
        if self.cfg.get("broker"):
            host, port = self.cfg["broker"]
            if (app.settings.get("mqtt_host"), app.settings.get("mqtt_port")) != (host, port):
                changes["mqtt_host"], changes["mqtt_port"] = host, port
        if changes:
            app.settings.save(changes)
        if sec.get("pin") and not app.auth.has_pin():
            app.auth.set_pin(sec["pin"])
        self.sync = None
        if app.settings.get("mqtt_host"):
            # the MQTT stack is loaded only by a meter that has a broker: a
            # meter without one keeps that RAM (tests/test_device_build.py)
            from firmware.sync import from_settings
            if self.outbox is None:
                from firmware.outbox import Outbox
                self.outbox = Outbox(self.hal.outbox_flash)
            self.sync = from_settings(app, self.hal.wifi, self.outbox)
        self.core.sync = self.sync

    def poll_network(self):
        """The sync's share of the loop; the longest a call took is reported."""
        t = time.ticks_ms()
        action = self.core.network(self.clock.now_ms(), t)
        took = time.ticks_diff(time.ticks_ms(), t)
        if took > self.max_stall_ms:
            self.max_stall_ms = took
        if action == "reboot":      # a signed `reboot` from the head-end
            self.sync.disconnect()
            self.app.ledger.flush()
            self.boot()

    def next_event(self, now, horizon):
        """The next virtual time anything can happen, at most horizon: the
        meter's next wake or queued input, the next pulse, the next report."""
        nxt = min(horizon, self.core.wake(now))
        if self.report_ms and self.next_report < nxt:
            nxt = self.next_report
        # Batched billing: step at the last of the pulses that cannot change a
        # decision (or the last before nxt), not at each one. The ledger writes
        # the same records either way (tests/test_batch.py); an armed power
        # cut keeps one pulse per step so the cut lands where it would.
        most = 1 if self.per_pulse else self.app.supply.steady_pulses(now)
        p = self.hal.pulses.next_pulse_ms(nxt, most)
        if p is not None and p < nxt:
            nxt = p
        return nxt

    def advance(self, until):
        """Run virtual time forward to `until`, stopping at every queued
        input, wake and report, and at pulses (next_event) so that each is
        handled on time."""
        clock, core = self.clock, self.core
        while clock.now_ms() < until:
            nxt = self.next_event(clock.now_ms(), until)
            clock.set(nxt)
            core.step(nxt)
            if self.report_ms and nxt >= self.next_report:
                self.out.status(self.app.status(nxt), nxt)
                self.next_report += self.report_ms

    def final(self):
        """For the last line: what the meter has really measured, whether
        persisted or not (the energy on flash at boot plus every pulse the IC
        gave since), and what this run cost the flash."""
        f = self.hal.chip
        if self.boot_pulses is None:   # cut before the first boot completed
            p, wh = None, None
        else:
            p = self.boot_pulses + self.hal.pulses.pulses
            wh = mwh(p, self.board.IMP_PER_KWH) / 1000
        extra = {}
        if self.sync is not None:
            extra = {"mqtt": self.sync.stats, "mqtt_error": self.sync.last_error,
                     "max_sync_ms": self.max_stall_ms,
                     "telemetry_seq": self.outbox.tseq}
        extra.update({"true_pulses": p, "true_energy_wh": wh,
                      "events": self.app.log.seq if self.app else 0,
                "flash_writes": f.writes, "flash_bytes_written": f.bytes_written,
                "flash_max_erases": max(f.erases)})
        return extra


def run(cfg):
    console = cfg.get("console", False)
    out = Output(cfg.get("json", False), cfg.get("live", False), quiet=console)
    try:
        sim = Sim(cfg, out)
    except (OSError, ValueError) as e:
        sys.stderr.write("flash fault: %s\n" % e)
        return 4
    try:
        sim.boot()
        end = cfg.get("end_ms")
        if console:
            from hal.sim.realtime import run_console
            run_console(sim)
        elif end is not None and not cfg.get("paced"):
            sim.advance(end)
        else:
            from hal.sim.realtime import run_status
            run_status(sim, out, end)
        sim.app.ledger.flush()
        t = sim.clock.now_ms()
        out.status(sim.app.status(t), t, sim.final())
        if out.live:
            sys.stdout.write("\n")
        return 0
    except PowerCut as e:
        t = sim.clock.now_ms()
        d = {"event": "power_cut", "detail": str(e)}
        d.update(sim.final())
        out.event(d, t, always=True)
        return 3
    except UsageError as e:
        sys.stderr.write("tools/sim.py: %s\n" % e)
        return 2
    except LedgerFault as e:
        sys.stderr.write("ledger fault: %s\n" % e)
        return 4
    except RingFault as e:
        sys.stderr.write("flash fault: %s\n" % e)
        return 4
    finally:
        sim.hal.chip.close()


if __name__ == "__main__":
    import os
    sys.exit(run(json.loads(os.getenv("SIM_CONFIG") or "{}")))
