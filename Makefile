# TutorPulse: `make demo` runs everything locally; `make test` runs the whole suite. Both install first.
SHELL := /bin/bash
PYTHON ?= $(shell for p in python3.12 python3.11 python3; do if command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(not ((3,11) <= sys.version_info[:2] < (3,13)))' 2>/dev/null; then echo $$p; break; fi; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast bench clean histories

$(STAMP): pyproject.toml
	@if [ -z "$(PYTHON)" ]; then echo "TutorPulse needs Python 3.11 or 3.12 (durable-rules does not import on 3.13)"; exit 1; fi
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/tutorpulse demo

test: install
	$(BIN)/python -m pytest -q -ra

# Re-records the workflow histories replayed by tests/replay (read tests/replay/README.md first).
histories: install
	$(BIN)/python -m tests.replay.record

bench: install
	@for f in bench/*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) var/*.db var/*.log
