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

# Upgrades the database, loads the demo data, then serves the app. Without a
# STRIPE_SECRET_KEY the Stripe sandbox runs beside it (and stops with it).
run: $(VENV)/.runtime
	$(FLASK) db upgrade
	$(FLASK) demo-data
	@if [ -z "$$STRIPE_SECRET_KEY" ]; then \
	  SANDBOX_WEBHOOK_URLS=http://127.0.0.1:$(APP_PORT)/webhooks/stripe \
	    $(BIN)/python -m sandbox --port $(SANDBOX_PORT) & \
	  sandbox_pid=$$!; trap 'kill $$sandbox_pid 2>/dev/null' EXIT INT TERM; \
	  echo "Stripe sandbox on http://127.0.0.1:$(SANDBOX_PORT)"; \
	  STRIPE_API_BASE=http://127.0.0.1:$(SANDBOX_PORT) $(FLASK) run --port $(APP_PORT); \
	else \
	  $(FLASK) run --port $(APP_PORT); \
	fi

test: $(VENV)/.dev
	$(BIN)/pytest

lint: $(VENV)/.dev
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
