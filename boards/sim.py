# The simulated board: what an apartment meter looks like on the unix port.

from hal.sim.clock import VirtualClock
from hal.sim.flash import SimFlash
from hal.sim.pulses import LoadProfile, SimPulseSource
from hal.sim.relay import SimRelay

NAME = "sim"
IMP_PER_KWH = 1600          # energy-IC pulses per kWh (meter constant)
LEDGER_BLOCK_SIZE = 4096    # ESP32 flash erase sector
LEDGER_BLOCKS = 16          # 64 KiB ledger partition
LOSS_BOUND_MWH = 1000       # energy a power cut may lose (1 Wh)
INITIAL_CREDIT = 5000       # credit of a new meter, minor units
PRICE_PER_KWH = 2000        # flat price of a new meter, minor units per kWh


class Hal:
    """The simulated hardware of one meter."""

    def __init__(self, flash, pulses, relay, clock):
        self.flash = flash
        self.pulses = pulses
        self.relay = relay
        self.clock = clock


def build_hal(flash_path=None, load=None, seed=0, noise_pct=0, cut_after_writes=0,
              cut_erases=False, start_ms=0, imp_per_kwh=IMP_PER_KWH):
    clock = VirtualClock(start_ms)
    relay = SimRelay(clock)
    flash = SimFlash(flash_path, LEDGER_BLOCK_SIZE, LEDGER_BLOCKS, seed,
                     cut_after_writes, cut_erases)
    profile = load if load is not None else LoadProfile.constant(0)
    pulses = SimPulseSource(profile, imp_per_kwh, clock, relay, seed, noise_pct,
                            start_ms)
    return Hal(flash, pulses, relay, clock)
