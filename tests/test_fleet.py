"""tools/fleet.py as users run it: meters in shared MicroPython processes
against a real Mosquitto, a head-end checking every seal and sending signed
top-ups. The 1,000-meter run is in `make bench`; here a small fleet must lose
nothing and apply every top-up exactly once."""

import json
import subprocess
import sys

from conftest import ROOT


def test_a_small_fleet_loses_nothing_and_applies_every_topup():
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "fleet.py"), "24",
                        "--seconds", "25", "--per-process", "10", "--topups-per-s", "4",
                        "--json"], capture_output=True, text=True, timeout=300)
    rep = json.loads(r.stdout.strip().splitlines()[-1])
    assert r.returncode == 0, (rep, r.stderr[-2000:])
    assert rep["processes"] == 3 and rep["reported"] == 24 and rep["most_online"] == 24
    # every meter's events (boot, relay, config, top-ups) and telemetry arrived
    assert rep["events"] >= 24 * 3 and rep["lost_events"] == 0
    assert rep["telemetry"] >= 24 and rep["lost_telemetry"] == 0
    assert rep["forged"] == 0
    assert rep["topups_sent"] >= 40
    assert rep["topups_applied"] == rep["topups_sent"] and rep["topups_refused"] == 0
    assert rep["topups_on_meters"] == rep["topups_sent"]     # each on its ledger once
    assert rep["connects"] == 24          # one connection each, none dropped
