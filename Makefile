# The two set-up commands of the README: `make demo` and `make test`.
# Each installs what it needs; nothing else has to be done by hand.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install tools prism demo test test-cluster load-run lint services-start services-stop clean

# New modules need a re-install: strict editable mode links files one by one.
# Every module of every package, subpackages included (find: make's wildcard is one level).
PY_FILES := $(shell find newsmon pipeline connectors -name '*.py' -not -path '*/__pycache__/*')

# The compiled detection core (native/, Rust: PyO3 and the aho-corasick crate) is built from
# source first, since newsmon requires it; that needs cargo (https://rustup.rs).
NATIVE_FILES := native/Cargo.toml native/Cargo.lock native/pyproject.toml native/newsmon_native.pyi $(wildcard native/src/*.rs)

$(STAMP): pyproject.toml $(PY_FILES) $(NATIVE_FILES)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	@command -v cargo >/dev/null || { echo "cargo (Rust) is needed to build native/, newsmon's compiled detection core: https://rustup.rs" >&2; exit 1; }
	$(BIN)/python -m pip install -q ./native
	# strict editable mode: the package-dir mapping (pipeline/ -> newsmon.pipeline) is then a
	# plain tree of links that mypy and every import hook can read.
	$(BIN)/python -m pip install -q -e '.[dev]' --config-settings editable_mode=strict
	touch $(STAMP)

install: $(STAMP)

## Beam's portable runner, Prism, built from the Go module proxy and cached in the venv
## (stream mode and the Prism tests run on it; newsmon finds it there or at $$NEWSMON_PRISM).
# The version is pinned to the Python SDK's apache-beam: the Job API must match. A machine
# without Go, or a build that fails, fails this target: the Prism tests never skip.
BEAM_VERSION := 2.77.0
PRISM := $(BIN)/prism
$(PRISM): | $(STAMP)
	@command -v go >/dev/null || { echo "Go is needed to build Beam's Prism runner" >&2; exit 1; }
	GOBIN=$(abspath $(BIN)) go install github.com/apache/beam/sdks/v2/go/cmd/prism@v$(BEAM_VERSION)
	test -x $(PRISM)

prism: $(PRISM)

## Run the main job once on the embedded default: demo feeds from files, no Kafka, no search server.
demo: $(STAMP)
	$(BIN)/newsmon run --demo

## Start the real Kafka and search servers, then run the whole test suite with lint and types.
# The tests run even when lint fails, so one run shows everything; the exit status is the
# worst of the three.
test: $(STAMP) tools $(PRISM)
	bash deploy/local/services.sh start all
	set -a; . ./.services/env; set +a; export NEWSMON_PRISM=$(abspath $(PRISM)); status=0; \
	$(BIN)/python -m pytest || status=$$?; \
	$(BIN)/ruff check newsmon pipeline connectors tests bench || status=1; \
	$(BIN)/mypy -p newsmon || status=1; \
	exit $$status

## Every fault test on the three-node clusters (`make test` runs the cluster_quick subset):
## they start kafka-cluster and elasticsearch-cluster in .services-cluster and stop them.
test-cluster: $(STAMP)
	$(BIN)/python -m pytest tests/faults -m cluster -q --durations=0

## The load run that checks docs/scaling.md's capacity model (bounded: about 35-45 minutes on
## 2 cores): starts the three-node clusters in .services-cluster (~7 GB), runs
## bench/bench_load.py (10,000 feeds; up to 1 M items produced, at most 15 minutes; 5 minutes
## of bulk indexing; 5,000 articles through the pipeline), stops the clusters whatever the
## outcome.
load-run: $(STAMP)
	NEWSMON_SERVICES_HOME=$(CURDIR)/.services-cluster bash deploy/local/services.sh start clusters
	set -a; . ./.services-cluster/env; set +a; status=0; \
	$(BIN)/python bench/bench_load.py --pipeline-articles 5000 --json || status=$$?; \
	NEWSMON_SERVICES_HOME=$(CURDIR)/.services-cluster bash deploy/local/services.sh stop clusters; \
	exit $$status

## Debian tools the tests use: headless Chromium renders the HTML report (and, through
## chromium-driver, drives the inbox in tests/serve); docker-compose,
## systemd-analyze validate the deployment files offline (kubectl too, where the image has it:
## it is not in Debian). Root installs the missing.
TOOLS := chromium:chromium chromedriver:chromium-driver docker-compose:docker-compose systemd-analyze:systemd
tools:
	@missing=""; for t in $(TOOLS); do command -v $${t%%:*} >/dev/null 2>&1 || missing="$$missing $${t#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq $$missing; \
	  else echo "install Debian's$$missing for the report and deployment tests" >&2; exit 1; fi; fi

lint: $(STAMP)
	$(BIN)/ruff check newsmon pipeline connectors tests bench
	$(BIN)/mypy -p newsmon

services-start:
	bash deploy/local/services.sh start all

services-stop:
	bash deploy/local/services.sh stop all
	NEWSMON_SERVICES_HOME=$(CURDIR)/.services-es8 bash deploy/local/services.sh stop all
	# the instances of tests/security and tests/faults (their fixtures stop them; this is for
	# a run that was interrupted)
	for home in .services-secure .services-faults .services-cluster; do \
	  if [ -d $(CURDIR)/$$home ]; then \
	    NEWSMON_SERVICES_HOME=$(CURDIR)/$$home bash deploy/local/services.sh stop all clusters; fi; done

clean:
	rm -rf $(VENV) build .newsmon
