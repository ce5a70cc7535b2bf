# Freeze the meter firmware into a MicroPython ESP32 build, so its bytecode
# stays in flash instead of the heap (docs/boards.md). In ports/esp32:
#   make BOARD=ESP32_GENERIC FROZEN_MANIFEST=/path/to/boards/manifest.py
# Only what a board runs: the firmware, the ESP32 HAL and the ESP32 boards,
# plus umqtt.simple as the port's own manifest would add it; not the simulator.
# main.py stays on the filesystem (tools/deploy.py --frozen writes it and
# removes module copies that would shadow these). tests/test_device_build.py
# checks that this resolves to exactly tools/build_mpy.board_modules().
include("$(PORT_DIR)/boards/manifest.py")
package("firmware", base_path="..")
package("hal", files=["__init__.py", "blockrange.py", "esp32/__init__.py", "esp32/board.py",
                      "esp32/net.py", "esp32/outputs.py", "esp32/pulses.py", "esp32/selftest.py",
                      "esp32/shell.py"],
        base_path="..")
package("boards", files=["__init__.py", "esp32_common.py", "esp32_devkit_bl0937.py",
                         "esp32s3_devkit.py", "esp32c3_devkit.py"], base_path="..")
require("umqtt.simple")
