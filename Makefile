# The two commands of the README: `make run` (the board with demo data) and `make test`.
PY := .venv/bin/python
PG_TEST_URL ?= postgresql://postgres@127.0.0.1:5432/test
REDIS_TEST_URL ?= redis://127.0.0.1:6379/15

REPLAY_PREFIX ?= R$(shell date +%H%M%S)-

.PHONY: setup run replay test test-sqlite test-pg lint services browser clean bench

setup: .venv/.installed node_modules/.installed

.venv/.installed: requirements.lock pyproject.toml
	python3 -m venv .venv
	.venv/bin/pip install --quiet --upgrade pip
	.venv/bin/pip install --quiet -r requirements.lock
	.venv/bin/pip install --quiet --no-deps -e .
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

run: setup
	.venv/bin/board demo

replay: setup
	.venv/bin/board replay ../shared/data/311/nyc311-2022-05-01-midnight-hour.csv --speed 60 \
		--simulate-officers --key-prefix $(REPLAY_PREFIX)

browser:
	@test -x /usr/bin/chromium || (apt-get update -qq && apt-get install -y -qq chromium)

services:
	bash scripts/services-up

lint: setup
	.venv/bin/ruff check board workers tests bench

test-sqlite: setup browser
	.venv/bin/pytest -q

test-pg: setup browser services
	DATABASE_URL=$(PG_TEST_URL) REDIS_URL=$(REDIS_TEST_URL) .venv/bin/pytest -q

# The whole suite on the embedded default, then on PostgreSQL + Redis.
test: lint test-sqlite test-pg

# Benchmarks (not part of `make test`): each prints its figures and its ratio to a baseline
# measured in the same run, and records them in bench/results.json (see BENCHMARKS.md).
# Add a benchmark by adding its script to BENCH.
BENCH ?= bench/fanout.py
# A city-year of 311 on PostgreSQL (QSTAT_BENCH_JOBS, default 1000000): about 15 min on two
# busy cores the first time; later runs keep the generated data and take about a minute.
BENCH += bench/qstat_scale.py
# 311 intake: rows/s into SQLite against one transaction per job, and peak RSS at 1,000,000
# rows against 100,000 (about an hour on two busy cores; --only rate for a quick run).
BENCH += bench/intake.py

.venv/.bench-installed: .venv/.installed pyproject.toml
	.venv/bin/pip install --quiet -e '.[bench]'
	touch $@

bench: setup services .venv/.bench-installed
	@set -e; for b in $(BENCH); do echo "== $$b"; $(PY) $$b; done

clean:
	rm -rf .venv node_modules var
