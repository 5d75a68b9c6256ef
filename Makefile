# TutorPulse: `make demo` runs everything locally; `make test` runs the whole suite. Both install first.
SHELL := /bin/bash
PYTHON ?= $(shell for p in python3.12 python3.11 python3; do if command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(not ((3,11) <= sys.version_info[:2] < (3,13)))' 2>/dev/null; then echo $$p; break; fi; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Browser assets come from the npm registry (package.json + package-lock.json, exact pins), never a CDN: htmx and
# Chart.js are copied into web/static/vendor/ (gitignored); tests/browser inject node_modules/axe-core/axe.min.js.
NODE_STAMP := node_modules/.installed
VENDOR_DIR := web/static/vendor
VENDOR := $(VENDOR_DIR)/htmx.min.js $(VENDOR_DIR)/chart.umd.min.js
CHROMIUM := /usr/bin/chromium
NPM ?= npm

.PHONY: install demo test test-fast bench clean histories assets browser

$(STAMP): pyproject.toml
	@if [ -z "$(PYTHON)" ]; then echo "TutorPulse needs Python 3.11 or 3.12 (durable-rules does not import on 3.13)"; exit 1; fi
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

# npm ci empties node_modules first, so the stamp inside it goes too: a changed package.json or lock re-installs.
# Without npm the pages still work (they lose their scripts) and the browser tests skip, saying why.
$(NODE_STAMP): package.json package-lock.json
	@if command -v $(NPM) >/dev/null 2>&1; then \
	  $(NPM) ci --no-audit --no-fund --ignore-scripts && touch $(NODE_STAMP); \
	else \
	  echo "npm not found: web assets (htmx, Chart.js, axe-core) not installed; pages run without their scripts and tests/browser skip. Install Node.js and npm (apt-get install -y npm), then run make install."; \
	fi

$(VENDOR_DIR)/htmx.min.js: $(NODE_STAMP)
	@if [ -f $(NODE_STAMP) ]; then mkdir -p $(VENDOR_DIR) && cp node_modules/htmx.org/dist/htmx.min.js $@; fi

$(VENDOR_DIR)/chart.umd.min.js: $(NODE_STAMP)
	@if [ -f $(NODE_STAMP) ]; then mkdir -p $(VENDOR_DIR) && cp node_modules/chart.js/dist/chart.umd.min.js{,.map} $(VENDOR_DIR)/; fi

assets: $(VENDOR)

install: $(STAMP) assets

# Debian's chromium for tests/browser (Playwright drives it; `playwright install` would download a browser build).
# Never fails the run: where it cannot be installed the browser tests skip with the reason.
browser:
	@if [ -x $(CHROMIUM) ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "Installing Debian's chromium for tests/browser"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; } \
	    || echo "apt-get could not install chromium: tests/browser will skip"; \
	else echo "No $(CHROMIUM) and no root apt-get to install it: tests/browser will skip"; fi

demo: install
	$(BIN)/tutorpulse demo

test: install browser
	$(BIN)/python -m pytest -q -ra -n auto --dist loadfile --no-loadscope-reorder

# Re-records the workflow histories replayed by tests/replay (read tests/replay/README.md first).
histories: install
	$(BIN)/python -m tests.replay.record

bench: install
	@for f in bench/*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) var/*.db var/*.log node_modules $(VENDOR_DIR) test-artifacts
