# What every ESP32 meter board shares: the flash layout of the `meter` data
# partition (boards/partitions.csv) and the firmware defaults.

PARTITION = "meter"
BLOCK_SIZE = 4096
LEDGER_BLOCKS, SETTINGS_BLOCKS, LOG_BLOCKS, OUTBOX_BLOCKS = 16, 2, 4, 4
LOSS_BOUND_MWH = 1000
LOW_CREDIT = 1000
INITIAL_CREDIT = 0
PRICE_PER_KWH = 2000


def settings_flash(board):
    """The settings partition alone: what provisioning writes secrets into."""
    from esp32 import Partition

    from hal.blockrange import BlockRange
    return BlockRange(Partition.find(Partition.TYPE_DATA, label=board.PARTITION)[0],
                      board.LEDGER_BLOCKS, board.SETTINGS_BLOCKS)


def build_hal(board, pulses, relay, wifi_ssid, wifi_pass):
    """The HAL of an ESP32 board: its pulse counter and relay driver, and the
    indicator and button on the board's pins."""
    from hal.esp32.board import Esp32Hal
    from hal.esp32.outputs import Button, Indicator
    return Esp32Hal(board, pulses, relay, Indicator(board.PIN_LED, board.PIN_BUZZER),
                    Button(board.PIN_BUTTON), wifi_ssid, wifi_pass)
