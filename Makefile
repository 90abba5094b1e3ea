# The two commands of the README: `make run` (the board with demo data) and `make test`.
PY := .venv/bin/python
PG_TEST_URL ?= postgresql://postgres@127.0.0.1:5432/test
REDIS_TEST_URL ?= redis://127.0.0.1:6379/15

REPLAY_PREFIX ?= R$(shell date +%H%M%S)-
# `make run PORT=8080` (HOST=0.0.0.0 to serve other machines)
PORT ?= 8000
HOST ?= 127.0.0.1
# Waits for a busy dpkg lock (unattended upgrades, another install) instead of failing.
APT := apt-get -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3
# `make soak SOAK_MINUTES=60` (the issue's hour is the default; README "Operating it")
SOAK_MINUTES ?= 60

.PHONY: setup run replay test test-sqlite test-pg lint docs docs-check services browser clean bench soak

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
	.venv/bin/board demo --host $(HOST) --port $(PORT)

replay: setup
	.venv/bin/board replay data/311/nyc311-2022-05-01-midnight-hour.csv --speed 60 \
		--simulate-officers --key-prefix $(REPLAY_PREFIX)

browser:
	@test -x /usr/bin/chromium || ($(APT) update -qq && \
		DEBIAN_FRONTEND=noninteractive $(APT) install -y -qq chromium)

services:
	bash scripts/services-up

# ruff, then the layer contracts in pyproject.toml (import-linter): inward imports only, no
# I/O in the domain, no import circle.
lint: setup
	.venv/bin/ruff check board workers tests bench soak
	.venv/bin/lint-imports

# pytest exits 5 when it collected no test: like any non-zero exit, make fails on it.
# (The two-process browser test and the outage tests use the local PostgreSQL and Redis even in
# the SQLite run, hence `services` here too.)
test-sqlite: setup browser services
	.venv/bin/pytest -q

test-pg: setup browser services
	DATABASE_URL=$(PG_TEST_URL) REDIS_URL=$(REDIS_TEST_URL) .venv/bin/pytest -q

# The manual (docs/, MkDocs Material) into site/; `docs-check` is the strict build `make test`
# runs, so a broken link or a page left out of the nav fails it.
docs: setup
	NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --quiet

docs-check: setup
	NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --quiet --site-dir var/site-check

# The whole suite on the embedded default, then on PostgreSQL + Redis.
test: lint docs-check test-sqlite test-pg

# Benchmarks (not part of `make test`): each prints its figures and its ratio to a baseline
# measured in the same run, and records them in bench/results.json (see BENCHMARKS.md).
# Add a benchmark by adding its script to BENCH (arguments in <script-stem>_ARGS).
BENCH ?= bench/board_page.py bench/fanout.py
fanout_ARGS ?= --sizes 100,1000 --scale-out 5000
# A city-year of 311 on PostgreSQL (QSTAT_BENCH_JOBS, default 1000000): about 15 min on two
# busy cores the first time; later runs keep the generated data and take about a minute.
BENCH += bench/qstat_scale.py
# Rows read per event (catch-up + write) at 50 and 2,000 open jobs in a precinct, on PostgreSQL:
# work proportional to the change, in a unit the machine's load does not move (~3 min).
BENCH += bench/rows.py
rows_ARGS ?= --sizes 50,2000 --database-url $(PG_TEST_URL)
# A city day: 77 precincts' jobs at 1.5 million a year, 10x, evening then a 3x peak, every wall,
# board, phone and QSTAT viewer connected, four `board serve` on throwaway PostgreSQL + Redis,
# then bare `websockets` with the same frames (~20 min; --minutes 2 for a short run).
BENCH += bench/cityday.py
cityday_ARGS ?= --minutes 8
# 311 intake: rows/s into SQLite against one transaction per job, and peak RSS at 1,000,000
# rows against 100,000 (about an hour on two busy cores; --only rate for a quick run).
BENCH += bench/intake.py

.venv/.bench-installed: .venv/.installed pyproject.toml
	.venv/bin/pip install --quiet -e '.[bench]'
	touch $@

bench: setup services .venv/.bench-installed
	@set -e; $(foreach b,$(BENCH),echo "== $(b)"; $(PY) $(b) $($(basename $(notdir $(b)))_ARGS);)

# Faults and load against throwaway PostgreSQL/Redis of its own (not part of `make test`);
# figures go to RELIABILITY.md by hand and soak/results.json by the run.
soak: setup services
	$(PY) soak/run.py --minutes $(SOAK_MINUTES)

clean:
	rm -rf .venv node_modules var site
