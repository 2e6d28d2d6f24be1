# Coachpact: `make run` serves the demo, `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app app
APP_PORT ?= 5000
SANDBOX_PORT ?= 12111

.PHONY: run test fuzz lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

# Upgrades the database, starts the Stripe sandbox (without a STRIPE_SECRET_KEY),
# loads the demo data (an active demo contract is paid at the sandbox for real),
# then serves the app with one job consumer beside it (on the SQLite queue under
# instance/, or Redis with REDIS_URL). All stop together.
run: $(VENV)/.runtime
	$(FLASK) db upgrade
	@pids=""; \
	trap 'kill $$pids 2>/dev/null' EXIT INT TERM; \
	if [ -z "$$STRIPE_SECRET_KEY" ]; then \
	  SANDBOX_WEBHOOK_URLS=http://127.0.0.1:$(APP_PORT)/webhooks/stripe \
	  SANDBOX_CONNECT_WEBHOOK_URLS=http://127.0.0.1:$(APP_PORT)/webhooks/stripe/connect \
	    $(BIN)/python -m sandbox --port $(SANDBOX_PORT) & \
	  pids="$$!"; \
	  export STRIPE_API_BASE=http://127.0.0.1:$(SANDBOX_PORT); \
	  echo "Stripe sandbox on $$STRIPE_API_BASE"; \
	  for _ in $$(seq 1 50); do \
	    $(BIN)/python -c "import urllib.request as u; u.urlopen('$$STRIPE_API_BASE/_sandbox/config', timeout=1)" 2>/dev/null && break; \
	    sleep 0.2; \
	  done; \
	fi; \
	$(FLASK) demo-data || exit 1; \
	$(FLASK) jobs consume --workers 2 & \
	pids="$$pids $$!"; \
	$(FLASK) run --port $(APP_PORT)

# axe-core for the accessibility tests, pinned by package-lock.json; `make run` needs no npm.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# The suite runs on every core (pytest-xdist); each worker has its own database.
test: $(VENV)/.dev node_modules/.installed
	$(BIN)/pytest -n auto

# The money state machine (tests/money) at length: EXAMPLES runs (200) from a random seed,
# printed first; `make fuzz SEED=<seed>` repeats a run.
fuzz: $(VENV)/.dev
	@seed=$${SEED:-$$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}; \
	echo "money fuzz: seed $$seed (make fuzz SEED=$$seed repeats this run)"; \
	MONEY_FUZZ_EXAMPLES=$${EXAMPLES:-200} $(BIN)/pytest tests/money -p no:cacheprovider \
	  --hypothesis-seed=$$seed --hypothesis-show-statistics

lint: $(VENV)/.dev
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) node_modules .pytest_cache .ruff_cache .mypy_cache
