# Coachpact: `make run` serves the demo, `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app app
APP_PORT ?= 5000
SANDBOX_PORT ?= 12111
# Derived from the ports unless set in the environment: where mailed links point, and
# where the app (and `make cli`) finds the sandbox when there is no STRIPE_SECRET_KEY.
APP_BASE_URL ?= http://127.0.0.1:$(APP_PORT)
SANDBOX_URL := http://127.0.0.1:$(SANDBOX_PORT)

.PHONY: run cli test fuzz lint bench clean

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
	export APP_BASE_URL="$(APP_BASE_URL)"; \
	echo "App on $$APP_BASE_URL"; \
	if [ -z "$$STRIPE_SECRET_KEY" ]; then \
	  SANDBOX_WEBHOOK_URLS=http://127.0.0.1:$(APP_PORT)/webhooks/stripe \
	  SANDBOX_CONNECT_WEBHOOK_URLS=http://127.0.0.1:$(APP_PORT)/webhooks/stripe/connect \
	    $(BIN)/python -m sandbox --port $(SANDBOX_PORT) & \
	  pids="$$!"; \
	  export STRIPE_API_BASE=$(SANDBOX_URL); \
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

# One `flask --app app` command against a running `make run` (the same ports, so the same
# sandbox and links): `make cli CMD="payments charge-due --ahead 31d"`.
cli: $(VENV)/.runtime
	@[ -n "$(CMD)" ] || { echo 'usage: make cli CMD="payments charge-due" [APP_PORT=..] [SANDBOX_PORT=..]'; exit 2; }
	@export APP_BASE_URL="$(APP_BASE_URL)"; \
	if [ -z "$$STRIPE_SECRET_KEY" ]; then export STRIPE_API_BASE=$(SANDBOX_URL); fi; \
	$(FLASK) $(CMD)

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
