# helpdesk: `make run` serves the desk on a laptop, `make test` runs the whole suite.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)

.PHONY: install run test translations bytecode bench bench-ingest clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

translations: install
	@if ls translations/*/LC_MESSAGES/messages.po >/dev/null 2>&1; then $(BIN)/pybabel -q compile -d translations; fi

# The project's bytecode, written ahead (quick when it is up to date): every process of `make run`
# and of the tests then starts without compiling it, even where PYTHONDONTWRITEBYTECODE is set
# (Python would otherwise compile every module again at every start: 0.7 s of it here).
bytecode: install
	@$(BIN)/python -m compileall -q -j 0 helpdesk workers config.py wsgi.py

run: install translations bytecode
	$(BIN)/python -m workers.dev

test: install translations bytecode
	@# axe-core for the browser tests' accessibility check (test-only, from npm); without npm it skips with the reason
	@if [ -f package.json ] && [ ! -d node_modules ] && command -v npm >/dev/null 2>&1; then npm ci --no-audit --no-fund; fi
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install
	$(BIN)/python bench/web_latency.py --tickets 10000

bench-ingest: install
	$(BIN)/python bench/ingest.py --messages 2000

clean:
	rm -rf $(VENV) instance/*.db
