# helpdesk: `make run` serves the desk on a laptop, `make test` runs the whole suite.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)

.PHONY: install run test translations bench bench-ingest clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

translations: install
	@if ls translations/*/LC_MESSAGES/messages.po >/dev/null 2>&1; then $(BIN)/pybabel -q compile -d translations; fi

run: install translations
	$(BIN)/python -m workers.dev

test: install translations
	@# axe-core for the browser tests' accessibility check (test-only, from npm); without npm it skips with the reason
	@if [ -f package.json ] && [ ! -d node_modules ] && command -v npm >/dev/null 2>&1; then npm ci --no-audit --no-fund; fi
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install
	$(BIN)/python bench/web_latency.py --tickets 10000

bench-ingest: install
	$(BIN)/python bench/ingest.py --messages 2000

clean:
	rm -rf $(VENV) instance/*.db
