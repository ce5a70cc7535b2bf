# ESP32-S3 DevKitC-1 (8 MB flash) with an HLW8012 energy IC and a monostable
# relay on a driver transistor.

import sys

from boards import esp32_common as common
from boards.esp32_common import (BLOCK_SIZE, INITIAL_CREDIT, LEDGER_BLOCKS,  # noqa: F401
                                 LOG_BLOCKS, LOSS_BOUND_MWH, LOW_CREDIT, OUTBOX_BLOCKS,
                                 PARTITION, PRICE_PER_KWH, SETTINGS_BLOCKS)

NAME = "esp32s3-devkit"
CHIP = "esp32s3"            # esptool --chip; strapping pins 0, 3, 45, 46
IMP_PER_KWH = 3200
PIN_CF = 4
PIN_RELAY = 5
PIN_BUTTON = 6              # not GPIO0 (BOOT): a strapping pin
PIN_TEST_OUT = 8            # the self-test drives pulses here: a jumper to PIN_CF
PIN_LED = 7                 # a plain LED and resistor: the DevKitC-1's own LED (GPIO48
                            # or 38) is an addressable RGB one that Pin.value cannot light
PIN_BUZZER = None
RELAY_KIND = "monostable"


def build_hal(wifi_ssid="", wifi_pass=""):
    from hal.esp32.outputs import MonostableRelay
    from hal.esp32.pulses import PcntPulses
    return common.build_hal(sys.modules[__name__], PcntPulses(PIN_CF), MonostableRelay(PIN_RELAY),
                            wifi_ssid, wifi_pass)


def settings_flash():
    return common.settings_flash(sys.modules[__name__])
