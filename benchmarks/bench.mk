# Benchmarks and load tests; the top-level Makefile includes this file.
# Every run is bounded in time; servers listen on 127.0.0.1 on free ports and
# are stopped by PID. Results land in benchmarks/results/.

BENCH_PY ?= .venv/bin/python
BENCH_HOME ?= /tmp/bench-bentoml
BENCH_DURATION ?= 10
BENCH_ROUNDS ?= 2
BENCH_ARGS ?=
LOADTEST_TIME ?= 60s
LOADTEST_USERS ?= 20
SOAK_TIME ?= 10m
SOAK_USERS ?= 20
# Names the result files, so runs of different changes sit side by side.
SOAK_LABEL ?= soak

.PHONY: bench bench-access loadtest soak loadtest-smoke

## bench: Bento vs bare Starlette vs the old FastAPI prototype (wrk, c=1 and 16)
bench: bench-access
	BENTOML_HOME=$(BENCH_HOME) $(BENCH_PY) -m benchmarks.run \
		--duration $(BENCH_DURATION) --rounds $(BENCH_ROUNDS) $(BENCH_ARGS)

## bench-access: cost of the API-key check and rate limit per request (µs table)
bench-access:
	$(BENCH_PY) -m benchmarks.access_check

## loadtest: headless Locust (original task mix) against a fresh Bento
loadtest:
	BENTOML_HOME=$(BENCH_HOME) $(BENCH_PY) -m benchmarks.soak --label loadtest \
		--run-time $(LOADTEST_TIME) --users $(LOADTEST_USERS) --sample-every 2

## soak: bounded Locust run at ~half capacity, sampling RSS of every process
soak:
	BENTOML_HOME=$(BENCH_HOME) $(BENCH_PY) -m benchmarks.soak --label $(SOAK_LABEL) \
		--run-time $(SOAK_TIME) --users $(SOAK_USERS)

## loadtest-smoke: the 5 s Locust and 10 s soak tests against a test server
loadtest-smoke:
	$(BENCH_PY) -m pytest -q tests/e2e/test_locust_smoke.py

SCALE_SIZES ?= 100000,1000000,10000000
SCALE_PG_SIZE ?= 1000000
SCALE_ARGS ?=

.PHONY: bench-scale
## bench-scale: snapshot time, /predict c=16, bytes/exposure at 0.1 M-10 M exposures (#12)
bench-scale:
	BENTOML_HOME=$(BENCH_HOME) $(BENCH_PY) -m benchmarks.scale --sizes $(SCALE_SIZES) \
		--pg-size $(SCALE_PG_SIZE) --duration $(BENCH_DURATION) $(SCALE_ARGS)
