# smart-policing-twin: the two set-up commands are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: demo test bench lint install clean

# (Re)install when the packaging or a Cython kernel changes: an editable install does not
# rebuild a changed .pyx by itself.
$(STAMP): pyproject.toml setup.py $(wildcard ext/*.pyx ext/*.pxd)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/twin build --out cities/helsinki
	$(BIN)/twin run scenarios/helsinki_morning_rush.yaml

test: $(STAMP)
	$(BIN)/ruff check twin agents dashboards ext tests benchmarks setup.py
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

lint: $(STAMP)
	$(BIN)/ruff check twin agents dashboards ext tests benchmarks setup.py
	$(BIN)/ruff format --check twin agents dashboards ext tests benchmarks setup.py

clean:
	rm -rf build *.egg-info cities/.*.partial-*
