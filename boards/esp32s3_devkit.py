# ESP32-S3 DevKitC-1 (8 MB flash) with an HLW8012 energy IC and a monostable
# relay on a driver transistor.

NAME = "esp32s3-devkit"
IMP_PER_KWH = 3200
PIN_CF = 4
PIN_RELAY = 5
PIN_BUTTON = 0
PIN_LED = 48
PIN_BUZZER = None
RELAY_KIND = "monostable"
PARTITION = "meter"
BLOCK_SIZE = 4096
LEDGER_BLOCKS, SETTINGS_BLOCKS, LOG_BLOCKS, OUTBOX_BLOCKS = 16, 2, 4, 4
LOSS_BOUND_MWH = 1000
LOW_CREDIT = 1000
INITIAL_CREDIT = 0
PRICE_PER_KWH = 2000


def build_hal(wifi_ssid="", wifi_pass=""):
    import sys
    from hal.esp32.board import Esp32Hal
    from hal.esp32.outputs import Button, Indicator, MonostableRelay
    from hal.esp32.pulses import PcntPulses
    return Esp32Hal(sys.modules[__name__],
                    PcntPulses(PIN_CF), MonostableRelay(PIN_RELAY),
                    Indicator(PIN_LED, PIN_BUZZER), Button(PIN_BUTTON), wifi_ssid, wifi_pass)


def settings_flash():
    """The settings partition alone: what provisioning writes secrets into."""
    from esp32 import Partition

    from hal.blockrange import BlockRange
    return BlockRange(Partition.find(Partition.TYPE_DATA, label=PARTITION)[0],
                      LEDGER_BLOCKS, SETTINGS_BLOCKS)
