# Freeze the meter firmware into a MicroPython ESP32 build, so its bytecode
# stays in flash instead of the heap (docs/boards.md). In ports/esp32:
#   make BOARD=ESP32_GENERIC FROZEN_MANIFEST=/path/to/boards/manifest.py
include("$(PORT_DIR)/boards/manifest.py")
package("firmware", base_path="..")
package("hal", base_path="..", files=None)
package("boards", base_path="..")
require("umqtt.simple")
