# trustwire: two commands are all a new user needs.
#   make demo   set up .venv from nothing and run the tour
#   make test   set up .venv from nothing, then ruff, mypy --strict, the docs and the whole test suite
#   make docs   the documentation site in docs/_build/html (warnings are errors, links checked)
#               and the man page, docs/_build/man/trustwire.1 (alone: make man)
#   make bench  trustwire against stunnel, haproxy and nginx (~45 min; bench-quick < 5 min),
#               writing docs/benchmarks.md

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest docs man bench bench-quick bench-tools clean

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "error: python3.11 not found; install it (apt-get install python3 python3-venv)"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "error: trustwire needs Python 3.11 or newer"; exit 1; }
	@$(PYTHON) -m venv $(VENV) || { echo "error: could not create a virtualenv; on Debian run: apt-get install python3-venv"; exit 1; }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,docs]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/trustwire demo

lint: $(STAMP)
	$(BIN)/ruff check src tests examples docs $(wildcard bench)

typecheck: $(STAMP)
	$(BIN)/mypy --strict src

pytest: $(STAMP)
	$(BIN)/pytest -n 2 --dist loadgroup

DOCS_OUT := docs/_build

# -E: read every page each time, so a warning from an unchanged page still fails the build.
# No intersphinx and no linkcheck builder: the build needs no network.
docs: $(STAMP) man
	$(BIN)/sphinx-build -E -W --keep-going -n -q -b html docs $(DOCS_OUT)/html
	$(BIN)/python docs/tools/checklinks.py $(DOCS_OUT)/html \
	    --base "$$($(BIN)/python -c 'from trustwire.errors import DOCS_URL; print(DOCS_URL)')"

man: $(STAMP)
	$(BIN)/python docs/tools/manpage.py $(DOCS_OUT)/man/trustwire.1

test: lint typecheck docs pytest

BENCH_STAMP := $(VENV)/.bench-installed
BENCH_APT   := gcc libc6-dev libssl-dev openssl util-linux stunnel4 haproxy nginx libnginx-mod-stream

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	@touch $(BENCH_STAMP)

bench-tools:
	@if ! { command -v cc && command -v stunnel4 && command -v haproxy && command -v nginx \
	        && test -f /usr/include/openssl/ssl.h && test -f /usr/lib/nginx/modules/ngx_stream_module.so; } >/dev/null; then \
	    if [ "$$(id -u)" -eq 0 ]; then \
	        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(BENCH_APT) >/dev/null; \
	    else \
	        echo "error: the benchmark needs: apt-get install $(BENCH_APT)"; exit 1; \
	    fi; \
	fi

bench: $(BENCH_STAMP) bench-tools
	$(BIN)/python bench/run.py

bench-quick: $(BENCH_STAMP) bench-tools
	$(BIN)/python bench/run.py --quick

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis $(DOCS_OUT)
