# Generic ESP32 DevKit (ESP32-WROOM-32, 4 MB flash) with a BL0937 (or HLW8012)
# energy IC and a latching relay. Pins are GPIO numbers; docs/boards.md has
# the wiring.

import sys

from boards import esp32_common as common
from boards.esp32_common import (BLOCK_SIZE, INITIAL_CREDIT, LEDGER_BLOCKS,  # noqa: F401
                                 LOG_BLOCKS, LOSS_BOUND_MWH, LOW_CREDIT, OUTBOX_BLOCKS,
                                 PARTITION, PRICE_PER_KWH, SETTINGS_BLOCKS)

NAME = "esp32-devkit-bl0937"
CHIP = "esp32"              # esptool --chip; strapping pins 0, 2, 5, 12, 15
IMP_PER_KWH = 1600          # BL0937 CF pulses per kWh after this board's calibration
PIN_CF = 25                 # BL0937 CF output (active power pulses)
PIN_RELAY_SET = 26          # latching relay: set coil driver
PIN_RELAY_RESET = 27        # latching relay: reset coil driver
PIN_BUTTON = 33             # not GPIO0 (the BOOT button): held at a power-on or
                            # brownout reset it starts the ROM loader, the meter stops
PIN_TEST_OUT = 32           # the self-test drives pulses here: a jumper to PIN_CF
PIN_LED = 2                 # the DevKit's own LED (a strapping pin, but an output)
PIN_BUZZER = 4
RELAY_KIND = "latching"


def build_hal(wifi_ssid="", wifi_pass=""):
    from hal.esp32.outputs import LatchingRelay
    from hal.esp32.pulses import PcntPulses
    return common.build_hal(sys.modules[__name__], PcntPulses(PIN_CF),
                            LatchingRelay(PIN_RELAY_SET, PIN_RELAY_RESET), wifi_ssid, wifi_pass)


def settings_flash():
    return common.settings_flash(sys.modules[__name__])
