PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install browser test demo replay bench load-test fuzz chaos clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# Debian's chromium, chromium-driver and fonts-noto-cjk, for the dashboard's browser tests.
browser:
	bash scripts/install_browser.sh

test: install browser
	$(PY) -m pytest -n 2 -q

# The embedded service on the example county: April's events backfilled on event time, then
# the wall clock; the dashboard on http://127.0.0.1:8080/ until Ctrl-C.
demo: install
	$(VENV)/bin/shian run --config examples/county.yaml \
	    --backfill examples/events.jsonl examples/化验室抽检结果.xlsx

# The same month replayed on event time only, printed as a table and delivered to the file outbox.
replay: install
	$(VENV)/bin/shian replay examples/events.jsonl examples/化验室抽检结果.xlsx \
	    --config examples/county.yaml --until 2026-05-01T00:00:00 \
	    --out examples/out/notices.jsonl --rejects examples/out/rejects.jsonl --table --deliver
	@echo "消息已投递到文件发件箱 examples/out/发件箱/（每个部门一个文件夹：.eml 邮件，.md 群机器人卡片）"

# The replay, delivery, Kafka and service benchmarks in turn, one table of targets (bench/run.py;
# BENCH_ARGS, e.g. "--quick" for a few minutes each, or "--only replay,delivery").
bench: install
	$(PY) bench/run.py $(BENCH_ARGS)

# 200 events/s over HTTP for 30 minutes against shian run with two dashboard readers, then the
# pages over a year of data (LOAD_ARGS, e.g. "--quick", or "--phase soak --kill-at 120" for a
# kill -9 in the middle).
load-test: install
	$(PY) bench/load_test.py $(LOAD_ARGS)

# Every input path (JSON Lines, CSV, XLSX, HTTP, drop folder, config) fed inputs that are good or
# bad by construction, 10,000 per path, each within 10 s; a table, exit 1 on any failure
# (FUZZ_ARGS, e.g. "--n 500 --paths csv,xlsx"). The fast size runs in make test.
fuzz: install
	$(PY) -m tests.fuzz --n 10000 --jobs 2 $(FUZZ_ARGS)

# Fault injection with real parts (bench/chaos.py, not part of make test): SMTP down, robots
# refusing, the Kafka broker restarted, the worker and shian run SIGKILLed, disk full (a tmpfs:
# needs root), damaged snapshots. Prints one table; exit 1 on a lost notice, an undocumented
# duplicate or a failed check. CHAOS_ARGS, e.g. "--quick" or "--only 1,6a".
chaos: install
	$(PY) bench/chaos.py $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

# A single-node Kafka broker on 127.0.0.1 for development (scripts/kafka_broker.py is stdlib-only,
# so it runs before the virtualenv exists). KAFKA_ARGS, e.g. "--port 19092".
KAFKA_PY := $(if $(wildcard $(PY)),$(PY),$(PYTHON))

.PHONY: kafka-up kafka-down

kafka-up:
	$(KAFKA_PY) scripts/kafka_broker.py up $(KAFKA_ARGS)

kafka-down:
	$(KAFKA_PY) scripts/kafka_broker.py down $(KAFKA_ARGS)
