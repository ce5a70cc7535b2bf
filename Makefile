# Entry points. `make sim` and `make test` set everything up themselves.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-done
# plain `make sim`: a meter with a 1 kW load whose serial console is this terminal
ARGS ?= --console --load 1000

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup sim fleet headend demo screenshots test typecheck lint bench deploy clean stop-broker

setup: $(STAMP)

$(STAMP): requirements.txt requirements-stubs.txt tools/fetch_umqtt.py
	@$(PYTHON) -m venv --help >/dev/null 2>&1 || \
		($(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q python3-venv)
	@command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || \
		($(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q mosquitto mosquitto-clients)
	@command -v chromedriver >/dev/null 2>&1 || \
		($(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium chromium-driver)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --upgrade --target $(VENV)/esp32-stubs -r requirements-stubs.txt
	$(PY) tools/fetch_umqtt.py
	touch $(STAMP)

# the demo meter sim-0001 talks to a local broker (found, or started here), so
# `tools/meterctl.py topup sim-0001 10` works from a second terminal
sim: setup
	$(PY) tools/sim.py $$($(PY) tools/localbroker.py) $(ARGS)

# N meters against one Mosquitto of their own, with a head-end (tools/fleet.py)
N ?= 100
fleet: setup
	$(PY) tools/fleet.py $(N) $(ARGS_FLEET)

# the head-end service and its web app (docs/headend.md) on build/headend.sqlite, with
# the local broker; meters that meterctl provisioned (build/headend.json) are taken over
headend: setup
	@B="$$($(PY) tools/localbroker.py --broker-only)" && \
	if [ -f build/headend.json ]; then $(PY) -m headend import-registry build/headend.json; fi && \
	$(PY) -m headend $$B $(ARGS_HEADEND)

# the service with a few simulated meters: open http://127.0.0.1:8080/
demo: setup
	$(PY) tools/demo.py $(ARGS_DEMO)

# the browser test, its screenshots written to docs/screenshots/ (on purpose)
screenshots: setup
	HEADEND_SCREENSHOTS=docs/screenshots $(PY) -m pytest -q tests/test_headend_web.py

stop-broker:
	-kill $$(cat build/mosquitto.pid) 2>/dev/null; rm -f build/mosquitto.pid

# device code against the ESP32 port's stubs: an API the port lacks fails here
DEVICE_CODE := firmware hal/esp32 hal/blockrange.py boards/esp32_common.py \
	boards/esp32_devkit_bl0937.py \
	boards/esp32s3_devkit.py boards/esp32c3_devkit.py main.py
typecheck: setup
	MYPYPATH=$(VENV)/esp32-stubs $(PY) -m mypy --config-file tools/mypy-esp32.ini \
		--custom-typeshed-dir $(VENV)/esp32-stubs --cache-dir build/mypy-cache $(DEVICE_CODE)

# undefined and unused names everywhere, tests/mp's MicroPython programs included
# (viper's types, uint and ptr32, are names its compiler knows: F821 there)
lint: setup
	$(PY) -m ruff check -q --select F,E9 --exclude boards/manifest.py \
		--per-file-ignores "firmware/siphash_native.py:F821" \
		firmware hal boards tools tests headend main.py

test: setup typecheck lint
	$(PY) -m pytest -q tests

# make deploy PORT=/dev/ttyUSB0 BOARD=esp32_devkit_bl0937 SECRETS=build/m.secrets.json \
#             WIFI_SSID=... WIFI_PASS=... [INSTALL=1: a stock MicroPython image, give it the
#             meter's partition table first] [FROZEN=1: a MicroPython with boards/manifest.py frozen in]
deploy: setup
	$(PY) tools/deploy.py --port $(PORT) --board $(BOARD) \
		$(if $(SECRETS),--secrets $(SECRETS)) --wifi-ssid "$(WIFI_SSID)" --wifi-pass "$(WIFI_PASS)" \
		$(if $(INSTALL),--install) $(if $(FROZEN),--frozen)

# figures go to build/benchmarks.md; UPDATE_DOCS=1 also rewrites docs/benchmarks.md
bench: setup
	$(PY) tools/bench.py $(if $(UPDATE_DOCS),--update-docs)

clean:
	rm -rf $(VENV) build
