# jit-audit-export: `make demo` and `make test` work on a fresh clone; both create .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv test lint demo bench clean

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

demo: venv
	$(BIN)/python scripts/demo.py

# Flattening speed and memory against the runbook, TypeDeserializer and the codec floor (200k
# items), the memory bound again on 2M items, each DAG file's parse time, and the runbook's
# Method 4 (aws CLI + jq loop) against `jit-audit scan` on the emulator (scripts/bench_scan.py).
bench: venv .bench/awscli-venv/.installed /usr/bin/jq
	$(BIN)/python scripts/bench.py --items 200000 2000000

# The runbook's tools for bench_scan.py: the aws CLI, pinned, in its own venv (its botocore pins
# cannot clash with ours), and Debian's jq.
.bench/awscli-venv/.installed: requirements-bench-awscli.txt
	test -x .bench/awscli-venv/bin/python || $(PYTHON) -m venv .bench/awscli-venv
	.bench/awscli-venv/bin/pip install -q --disable-pip-version-check -r requirements-bench-awscli.txt
	touch $@

/usr/bin/jq:
	@command -v jq >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq >/dev/null; }

clean:
	rm -rf $(VENV) .demo .bench .pytest_cache .mypy_cache .ruff_cache
