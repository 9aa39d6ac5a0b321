# The two commands of the README: `make run` starts the whole local stack, `make test`
# installs what the tests need and runs every test. `.ci/run` calls `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench lint-template package clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m local

# Three workers on two cores: a third of the suite waits on subprocesses (the local stack,
# Chromium), and work stealing keeps the long browser tests from ending on one worker
# (measured: 612 s with -n auto, 523 s with -n 3 --dist worksteal).
test: $(STAMP)
	bash scripts/ensure-chromium.sh
	$(BIN)/python -m pytest -q -n 3 --dist worksteal

bench: $(STAMP)
	$(BIN)/python -m bench

package: $(STAMP)
	bash scripts/package.sh build/package

clean:
	rm -rf $(VENV) build .pytest_cache
