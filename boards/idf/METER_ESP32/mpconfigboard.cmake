# MicroPython's esp32 port, built for a meter on a plain ESP32 (no PSRAM):
#   make -C ports/esp32 BOARD_DIR=/path/to/meter/boards/idf/METER_ESP32
# The firmware is frozen (boards/manifest.py) so its bytecode stays in flash,
# and the image carries the meter's partition table (boards/partitions.csv).

include(boards/mpconfigboard_esp32_common.cmake)

# ESP-IDF reads a relative CONFIG_PARTITION_TABLE_CUSTOM_FILENAME from the
# port's directory, so the fragment gets this checkout's absolute path.
get_filename_component(METER_PARTITIONS_CSV ${MICROPY_BOARD_DIR}/../../partitions.csv ABSOLUTE)
configure_file(${MICROPY_BOARD_DIR}/sdkconfig.board ${CMAKE_BINARY_DIR}/sdkconfig.meter @ONLY)
list(APPEND SDKCONFIG_DEFAULTS ${CMAKE_BINARY_DIR}/sdkconfig.meter)

get_filename_component(MICROPY_FROZEN_MANIFEST ${MICROPY_BOARD_DIR}/../../manifest.py ABSOLUTE)
