# The HAL object of an ESP32 meter, from a board module's constants.

from esp32 import Partition

from hal.blockrange import BlockRange
from hal.esp32.net import NtpTime, Wifi

CA_PATH = "mqtt_ca.der"      # the broker's CA, beside the firmware (tools/deploy.py)
RELEASE_KEY = "release.key"  # the release key's modulus (firmware/ota.py; its folder is /)


class Esp32Hal:
    def __init__(self, board, pulses, relay, indicator, button, wifi_ssid, wifi_pass):
        parts = Partition.find(Partition.TYPE_DATA, label=board.PARTITION)
        if not parts:
            raise OSError(2, "no data partition %r: flash the board's partition table"
                          % board.PARTITION)
        chip = parts[0]
        a = board.LEDGER_BLOCKS
        b = a + board.SETTINGS_BLOCKS
        c = b + board.LOG_BLOCKS
        self.ledger_flash = BlockRange(chip, 0, a)
        self.settings_flash = BlockRange(chip, a, board.SETTINGS_BLOCKS)
        self.log_flash = BlockRange(chip, b, board.LOG_BLOCKS)
        self.outbox_flash = BlockRange(chip, c, board.OUTBOX_BLOCKS)
        self.pulses = pulses
        self.relay = relay
        self.indicator = indicator
        self.button = button
        self.wifi = Wifi(wifi_ssid, wifi_pass)
        self.ca = CA_PATH       # a path: firmware/tls.py loads only for a TLS link
        self.release_key = RELEASE_KEY
        # polled by the shell; returns UTC seconds when it has a fresh answer
        self.time_source = NtpTime(self.wifi)
