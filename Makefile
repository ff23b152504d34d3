# smart-policing-twin: the two set-up commands are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: demo test bench lint install clean services

# Services the tests talk to for real: Debian's mosquitto (MQTT broker) and chromium (the
# dashboards' browser tests). Installed with apt-get when missing (as root, or with sudo),
# so a fresh machine passes.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
services:
	@command -v mosquitto >/dev/null 2>&1 || test -x /usr/sbin/mosquitto || { \
		echo "Installing mosquitto (MQTT broker) for the live-feed tests"; \
		$(SUDO) apt-get update -q && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -q mosquitto; }
	@test -x /usr/bin/chromium || { \
		echo "Installing Debian's chromium for the dashboards' browser tests"; \
		$(SUDO) apt-get update -q && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

# (Re)install when the packaging or a Cython kernel changes: an editable install does not
# rebuild a changed .pyx by itself.
$(STAMP): pyproject.toml setup.py $(wildcard ext/*.pyx ext/*.pxd)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/twin build --city jakarta
	$(BIN)/twin run scenarios/jakarta_morning_rush.yaml
	@echo "Open the dashboards on this run (K3i command centre, unit board):"
	@echo "  $(BIN)/twin dash runs/jakarta-morning-rush    # then open the sign-in link it prints"

test: $(STAMP) services
	$(BIN)/ruff check twin agents dashboards ext tests benchmarks setup.py
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

lint: $(STAMP)
	$(BIN)/ruff check twin agents dashboards ext tests benchmarks setup.py
	$(BIN)/ruff format --check twin agents dashboards ext tests benchmarks setup.py

clean:
	rm -rf build *.egg-info cities/.*.partial-*
