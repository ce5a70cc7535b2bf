# The simulated board: what an apartment meter looks like on the unix port.
# Its flash is one image: the 64 KiB ledger partition first (so an image made
# before the other partitions existed is still the same meter), then settings
# and the event log.

from firmware.pinned import InRam, PinnedFile
from hal.blockrange import BlockRange
from hal.sim.clock import VirtualClock
from hal.sim.flash import SimFlash
from hal.sim.pulses import LoadProfile, SimPulseSource
from hal.sim.relay import SimIndicator, SimRelay
from hal.sim.wifi import SimWifi

NAME = "sim"
IMP_PER_KWH = 1600          # energy-IC pulses per kWh (meter constant)
BLOCK_SIZE = 4096           # ESP32 flash erase sector
LEDGER_BLOCKS = 16          # 64 KiB ledger partition
SETTINGS_BLOCKS = 2
LOG_BLOCKS = 4              # ~500 events
OUTBOX_BLOCKS = 4           # MQTT delivery cursor and ~500 telemetry snapshots
FLASH_BLOCKS = LEDGER_BLOCKS + SETTINGS_BLOCKS + LOG_BLOCKS + OUTBOX_BLOCKS
# images of earlier layouts (fewer partitions at the end) are the same meter
OLD_IMAGE_BYTES = (LEDGER_BLOCKS * BLOCK_SIZE,
                   (LEDGER_BLOCKS + SETTINGS_BLOCKS + LOG_BLOCKS) * BLOCK_SIZE)
LOSS_BOUND_MWH = 1000       # energy a power cut may lose (1 Wh)
LOW_CREDIT = 1000           # low-credit warning threshold, minor units
INITIAL_CREDIT = 5000       # credit of a new meter, minor units
PRICE_PER_KWH = 2000        # flat price of a new meter, minor units per kWh
RELAY_KIND = "latching"     # bistable: a coil pulse per switch ("monostable": a level)


class Hal:
    """The simulated hardware of one meter."""

    def __init__(self, chip, pulses, relay, clock, indicator, ca=None):
        self.chip = chip
        # the broker's CA (firmware/tls.py): beside the flash image, or in RAM
        self.ca = ca if ca is not None else InRam()
        self.ledger_flash = BlockRange(chip, 0, LEDGER_BLOCKS)
        self.settings_flash = BlockRange(chip, LEDGER_BLOCKS, SETTINGS_BLOCKS)
        self.log_flash = BlockRange(chip, LEDGER_BLOCKS + SETTINGS_BLOCKS, LOG_BLOCKS)
        self.outbox_flash = BlockRange(chip, LEDGER_BLOCKS + SETTINGS_BLOCKS + LOG_BLOCKS,
                                       OUTBOX_BLOCKS)
        self.wifi = SimWifi(clock)
        self.pulses = pulses
        self.relay = relay
        self.clock = clock
        self.indicator = indicator


def build_hal(flash_path=None, load=None, seed=0, noise_pct=0, cut_after_writes=0,
              cut_erases=False, start_ms=0, imp_per_kwh=IMP_PER_KWH):
    clock = VirtualClock(start_ms)
    relay = SimRelay(clock)
    chip = SimFlash(flash_path, BLOCK_SIZE, FLASH_BLOCKS, seed, cut_after_writes,
                    cut_erases, grow_from=OLD_IMAGE_BYTES)
    profile = load if load is not None else LoadProfile.constant(0)
    pulses = SimPulseSource(profile, imp_per_kwh, clock, relay, seed, noise_pct,
                            start_ms)
    return Hal(chip, pulses, relay, clock, SimIndicator(clock),
               PinnedFile(flash_path + ".ca") if flash_path else None)


def settings_flash(path="meter.img"):
    """The settings partition alone: what provisioning writes secrets into."""
    chip = SimFlash(path, BLOCK_SIZE, FLASH_BLOCKS, grow_from=OLD_IMAGE_BYTES)
    return BlockRange(chip, LEDGER_BLOCKS, SETTINGS_BLOCKS)
