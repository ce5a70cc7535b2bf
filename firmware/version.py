# The firmware's version: `meterctl release VERSION` builds a release with
# this line replaced; a meter takes only releases newer than it (firmware/ota.py).
VERSION = "1.0.0"
