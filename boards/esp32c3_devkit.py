# ESP32-C3 DevKitM-1 (4 MB flash) with a BL0937 and a monostable relay. The C3
# has no PCNT, so its pulses are counted by interrupt (hal/esp32/pulses.py:
# fine for the BL0937's CF output, a few Hz).

import sys

from boards import esp32_common as common
from boards.esp32_common import (BLOCK_SIZE, INITIAL_CREDIT, LEDGER_BLOCKS,  # noqa: F401
                                 LOG_BLOCKS, LOSS_BOUND_MWH, LOW_CREDIT, OUTBOX_BLOCKS,
                                 PARTITION, PRICE_PER_KWH, SETTINGS_BLOCKS)

NAME = "esp32c3-devkit"
CHIP = "esp32c3"            # esptool --chip; strapping pins 2, 8, 9
IMP_PER_KWH = 1600
PIN_CF = 4
PIN_RELAY = 5
PIN_BUTTON = 3              # not GPIO9: a strapping pin (held at reset, the ROM loader runs)
PIN_TEST_OUT = 6            # the self-test drives pulses here: a jumper to PIN_CF
PIN_LED = 7
PIN_BUZZER = None
RELAY_KIND = "monostable"


def build_hal(wifi_ssid="", wifi_pass=""):
    from hal.esp32.outputs import MonostableRelay
    from hal.esp32.pulses import IrqPulses
    return common.build_hal(sys.modules[__name__], IrqPulses(PIN_CF), MonostableRelay(PIN_RELAY),
                            wifi_ssid, wifi_pass)


def settings_flash():
    return common.settings_flash(sys.modules[__name__])
