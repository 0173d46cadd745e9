# jit-audit-export: `make demo` and `make test` work on a fresh clone; both create .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv test lint demo up bench fuzz clean celery-services

venv: $(STAMP)

# gcc first: `pip install -e .` compiles the flattener's C fast path (without it, make test fails saying so).
$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml dev/pyproject.toml setup.py | /usr/bin/gcc
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

# Layering (.importlinter): the core never imports Airflow, the product never the dev package, DAG
# files only airflow.sdk and jit_audit_airflow, no cycles in the core.
lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy
	PYTHONPATH=include:plugins:dev:. $(BIN)/lint-imports

# The whole suite, tests/live included: real Airflow processes and the emulator on loopback, and the
# Airflow UI in headless Debian chromium (Playwright drives /usr/bin/chromium; it downloads no browser).
# Debian packages the tests use, installed when missing: chromium, curl and jq (docs/operating.md's
# commands run as written), gcc (the C fast path, and its AddressSanitizer/UBSan build), PostgreSQL
# and Redis (the Celery stack of tests/live/test_celery_live.py, started as plain processes).
# Two pytest-xdist workers (one per core), work shared out by group: the tests on the SQLite live
# stack form one group (one worker, one stack), the Celery stack's another; the rest in between.
# The 20 slowest tests are listed at the end.
test: lint /usr/bin/chromium /usr/bin/curl /usr/bin/jq celery-services
	$(BIN)/pytest -n 2 --dist loadgroup --durations=20

demo: venv
	$(BIN)/python scripts/demo.py

# The stack for a person: emulator, seeded table, Airflow UI on http://127.0.0.1:$(PORT)/ (credentials
# printed), until Ctrl-C, which stops every process it started. EXECUTOR=celery: CeleryExecutor with
# PostgreSQL, Redis and WORKERS Celery workers (docker-compose.yaml's topology as plain processes).
PORT ?= 8080
EXECUTOR ?= local
WORKERS ?= 2
up: venv $(if $(filter celery,$(EXECUTOR)),celery-services)
	$(BIN)/python scripts/up.py --port $(PORT) --executor $(EXECUTOR) --workers $(WORKERS)

# Flattening speed and memory against the runbook, TypeDeserializer, the Python-only path and the
# codec floor (200k items), the memory bound again on 2M items, each DAG file's parse time, and the
# runbook's Method 4 Scan loop against `jit-audit scan` on the emulator (scripts/bench_scan.py), and
# 2,000,000 items in 200 data files through jit_audit_export on the local stack (scripts/bench_dag.py).
bench: venv
	$(BIN)/python scripts/bench.py --items 200000 2000000

# The flattener's differential fuzz test (tests/core/test_flatten_fuzz.py) for longer than make test's
# 40 s: the C fast path against the Python path on generated and mutated export lines, FUZZ_SECONDS
# long (make fuzz FUZZ_SECONDS=3600), with a fresh seed unless JIT_AUDIT_FUZZ_SEED is set.
FUZZ_SECONDS ?= 600
fuzz: venv
	JIT_AUDIT_FUZZ_SECONDS=$(FUZZ_SECONDS) $(BIN)/pytest tests/core/test_flatten_fuzz.py

/usr/bin/chromium:
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

/usr/bin/curl /usr/bin/jq:
	@test -x $@ || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(notdir $@) >/dev/null; }

# PostgreSQL (any version Debian ships: the stack looks in /usr/lib/postgresql/*/bin) and Redis. The
# stacks start their own servers on free ports; on a host run by systemd, the system services the
# packages just enabled (PostgreSQL on 5432, Redis on 6379) are stopped and disabled again.
celery-services:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && test -x /usr/bin/redis-server || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql redis-server >/dev/null && { test ! -d /run/systemd/system || systemctl disable --now postgresql redis-server >/dev/null 2>&1 || true; }; }

/usr/bin/gcc:
	@test -x $@ || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq build-essential >/dev/null; }

clean:
	rm -rf $(VENV) .demo .up .bench test-artifacts .pytest_cache .mypy_cache .ruff_cache .import_linter_cache build
