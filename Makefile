# critflow — the two set-up commands: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEMO_MODEL := examples/battery_recycling_hydromet.yaml
DEMO_OUT   := out/battery_recycling_hydromet

.PHONY: demo test test-fast lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# make demo installs the modelling toolkit alone (what `critflow run` and its report need);
# make test installs every extra and the test tools on top (and marks both as done).
$(VENV)/.installed-base: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed-base

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	touch $@

demo: $(VENV)/.installed-base
	$(BIN)/critflow run $(DEMO_MODEL) --out $(DEMO_OUT)
	@echo
	@echo "Demo finished. Report: $(DEMO_OUT)/report.html (tables beside it: flows, balance, indicators, results.xlsx)."

test: $(VENV)/.installed
	$(BIN)/python -m pytest

# the fast loop while you work: everything but browser, crash, multi-worker server and load tests
test-fast: $(VENV)/.installed
	$(BIN)/python -m pytest -m "not slow"

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests benchmarks

# every benchmark prints the machine, the versions (critflow's and the peer's) and
# min / median / max over interleaved repetitions; the README's figures are copied from these prints
bench: $(VENV)/.installed-bench
	$(BIN)/python benchmarks/engine.py
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/stocks_vs_flodym.py
	$(BIN)/python benchmarks/regions.py
	$(BIN)/python benchmarks/lca.py
	$(BIN)/python benchmarks/montecarlo.py --reps 3
	$(BIN)/python benchmarks/blend.py --clarabel
	$(BIN)/python benchmarks/passport_bulk.py
	$(BIN)/python benchmarks/startup.py

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
