# Two commands on a fresh machine: `make run` (demo service on :8080) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run topology test check bench clean venv

$(STAMP): pyproject.toml setup.py enforcement/core/_lookup.c enforcement/core/_judge.c \
		enforcement/core/_judging.c enforcement/core/_lookup.h enforcement/core/_judge.h \
		enforcement/core/_answer.h
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Varco needs Python 3.11 or newer; set PYTHON=python3.x")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/varco demo

# Redis, the loader daemon, two replicas (8081, 8082) and the OS's nginx (8080) as separate
# processes; ports: VARCO_PORT, VARCO_REPLICA_PORTS (python -m deploy.topology --help).
topology: $(STAMP)
	$(BIN)/python -m deploy.topology

check: $(STAMP)
	$(BIN)/ruff check enforcement loader varco deploy bench tests
	$(BIN)/ruff format --check enforcement loader varco deploy bench tests
	$(BIN)/mypy

test: check
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m bench.bench_index

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
