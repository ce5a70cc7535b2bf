# Entry points. `make sim` and `make test` set everything up themselves.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-done
# plain `make sim`: a meter with a 1 kW load whose serial console is this terminal
ARGS ?= --console --load 1000

.PHONY: setup sim test bench clean

setup: $(STAMP)

$(STAMP): requirements.txt requirements-stubs.txt tools/fetch_umqtt.py
	@$(PYTHON) -m venv --help >/dev/null 2>&1 || \
		(apt-get update -q && apt-get install -y -q python3-venv)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --upgrade --target $(VENV)/esp32-stubs -r requirements-stubs.txt
	$(PY) tools/fetch_umqtt.py
	touch $(STAMP)

sim: setup
	$(PY) tools/sim.py $(ARGS)

test: setup
	$(PY) -m pytest -q tests

bench: setup
	$(PY) tools/bench.py

clean:
	rm -rf $(VENV) build
