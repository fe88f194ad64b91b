# Everything a developer or CI needs, from a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install kafka-jars run run-cluster test test-cluster test-fast lint format typecheck check clean bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Fetches the Apache Kafka broker jars with Maven once; later runs reuse the cache.
kafka-jars: install
	$(PY) -m devtools.local_kafka fetch

# Builds Shopify's Toxiproxy (pinned) with `go install` once, for the network-fault tests;
# the tests do this themselves on first use, and skip, saying why, where Go is missing.
.PHONY: toxiproxy
toxiproxy: install
	$(PY) -m devtools.toxiproxy install

# The whole system: a local Kafka (unless KAFKA_BOOTSTRAP_SERVERS is set), the command API,
# the relay, the query API and the projector, with output prefixed per process.
run: install kafka-jars
	$(PY) scripts/run_system.py

# The scale-out shape on this machine: PostgreSQL, three Kafka brokers, two command hosts,
# three projectors, two query APIs and the console (scripts/run_cluster.py).
run-cluster: install kafka-jars
	$(PY) scripts/run_cluster.py

# The whole test suite against a real Kafka broker the suite starts itself, then the scale-out
# tests (three brokers, PostgreSQL) as a second run, so each stays within its own budget.
# Toxiproxy is built first where Go is installed, keeping its first build out of a test's timeout.
test: install kafka-jars
	@if command -v go >/dev/null 2>&1; then $(PY) -m devtools.toxiproxy install; fi
	$(PY) -m pytest
	$(PY) -m pytest -m cluster

# The scale-out tests (marker `cluster`): three brokers, PostgreSQL, make run-cluster.
test-cluster: install kafka-jars
	$(PY) -m pytest -m cluster

# Pure unit tests only: no broker, no files.
test-fast: install
	$(PY) -m pytest tests/unit

# Benchmarks (bench/, one script per question): about 30 minutes on 2 cores; results in
# bench/results/*.json, the table in docs/benchmarks.md. Trial run: make bench BENCH_ARGS=--quick
# The HTTP benchmarks load the servers with wrk (a system package): installed here with
# apt-get when it is missing and we run as root; otherwise this says how. Without it,
# bench/pipeline_http.py stops with that advice and bench/http_commands.py uses locust.
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	@if ! command -v wrk >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing wrk with apt-get"; \
	    apt-get install -y -qq wrk >/dev/null || \
	      { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; } || \
	      echo "warning: apt-get could not install wrk"; \
	  else \
	    echo "wrk is not installed: run 'sudo apt-get install -y wrk' (Debian/Ubuntu)" \
	      "or 'brew install wrk' (macOS), then make bench"; \
	  fi; \
	fi
	touch $(BENCH_STAMP)

bench: install kafka-jars $(BENCH_STAMP)
	$(PY) -m bench $(BENCH_ARGS)

# The topic's AsyncAPI document (command_service/outbox/asyncapi.py), committed as docs/asyncapi.json.
.PHONY: asyncapi
asyncapi: install
	$(PY) -m command_service.outbox.asyncapi > docs/asyncapi.json

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck: install
	$(VENV)/bin/mypy

check: lint typecheck test

# The monitoring pack (deploy/, docs/monitoring.md): the alert rules, their unit tests (each
# alert fires on a synthetic series), both Prometheus configs (syntax only: the token file
# they name exists only where Prometheus runs) and the dashboard's JSON. .ci/run calls it.
.PHONY: check-monitoring
check-monitoring:
	@command -v promtool >/dev/null 2>&1 || { \
	  echo "promtool is not installed: run 'sudo apt-get install -y prometheus' (Debian/Ubuntu;" \
	    "promtool comes with it) or take it from a release at https://prometheus.io/download/," \
	    "then make check-monitoring"; exit 1; }
	promtool check rules deploy/prometheus/alerts.yml
	promtool test rules deploy/prometheus/alerts.test.yml
	promtool check config --syntax-only deploy/prometheus/prometheus.yml \
	  deploy/prometheus/prometheus-local.yml
	$(PYTHON) -m json.tool deploy/grafana/dashboards/orders.json >/dev/null

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache data .data
