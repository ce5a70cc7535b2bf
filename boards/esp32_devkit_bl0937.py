# Generic ESP32 DevKit (ESP32-WROOM-32, 4 MB flash) with a BL0937 (or HLW8012)
# energy IC and a latching relay. Pins are GPIO numbers; docs/boards.md has
# the wiring.

NAME = "esp32-devkit-bl0937"
IMP_PER_KWH = 1600          # BL0937 CF pulses per kWh after this board's calibration
PIN_CF = 25                 # BL0937 CF output (active power pulses)
PIN_RELAY_SET = 26          # latching relay: set coil driver
PIN_RELAY_RESET = 27        # latching relay: reset coil driver
PIN_BUTTON = 0              # the BOOT button doubles as the customer's button
PIN_LED = 2
PIN_BUZZER = 4
RELAY_KIND = "latching"
PARTITION = "meter"         # data partition (partitions.csv): ledger, settings, log, outbox
BLOCK_SIZE = 4096
LEDGER_BLOCKS, SETTINGS_BLOCKS, LOG_BLOCKS, OUTBOX_BLOCKS = 16, 2, 4, 4
LOSS_BOUND_MWH = 1000
LOW_CREDIT = 1000
INITIAL_CREDIT = 0
PRICE_PER_KWH = 2000


def build_hal(wifi_ssid="", wifi_pass=""):
    import sys
    from hal.esp32.board import Esp32Hal
    from hal.esp32.outputs import Button, Indicator, LatchingRelay
    from hal.esp32.pulses import PcntPulses
    return Esp32Hal(sys.modules[__name__],
                    PcntPulses(PIN_CF), LatchingRelay(PIN_RELAY_SET, PIN_RELAY_RESET),
                    Indicator(PIN_LED, PIN_BUZZER), Button(PIN_BUTTON), wifi_ssid, wifi_pass)


def settings_flash():
    """The settings partition alone: what provisioning writes secrets into."""
    from esp32 import Partition

    from hal.blockrange import BlockRange
    return BlockRange(Partition.find(Partition.TYPE_DATA, label=PARTITION)[0],
                      LEDGER_BLOCKS, SETTINGS_BLOCKS)
