// A prepaid meter on an ESP32 module without PSRAM (boards/esp32_devkit_bl0937.py).
#define MICROPY_HW_BOARD_NAME "Prepaid meter (ESP32)"
#define MICROPY_HW_MCU_NAME "ESP32"
