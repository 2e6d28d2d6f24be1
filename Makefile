# Coachpact: `make run` serves the demo, `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app app
APP_PORT ?= 5000
SANDBOX_PORT ?= 12111

.PHONY: run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

# Upgrades the database, loads the demo data, then serves the app with one job
# consumer beside it (on the SQLite queue under instance/, or Redis with REDIS_URL).
# Without a STRIPE_SECRET_KEY the Stripe sandbox runs too. All stop together.
run: $(VENV)/.runtime
	$(FLASK) db upgrade
	$(FLASK) demo-data
	@pids=""; \
	trap 'kill $$pids 2>/dev/null' EXIT INT TERM; \
	if [ -z "$$STRIPE_SECRET_KEY" ]; then \
	  SANDBOX_WEBHOOK_URLS=http://127.0.0.1:$(APP_PORT)/webhooks/stripe \
	    $(BIN)/python -m sandbox --port $(SANDBOX_PORT) & \
	  pids="$$!"; \
	  export STRIPE_API_BASE=http://127.0.0.1:$(SANDBOX_PORT); \
	  echo "Stripe sandbox on $$STRIPE_API_BASE"; \
	fi; \
	$(FLASK) jobs consume --workers 2 & \
	pids="$$pids $$!"; \
	$(FLASK) run --port $(APP_PORT)

test: $(VENV)/.dev
	$(BIN)/pytest

lint: $(VENV)/.dev
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
