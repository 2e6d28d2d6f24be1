"""`make run` and `make cli` derive the app's address and the sandbox's from the ports given."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

MAKE = shutil.which("make")
pytestmark = pytest.mark.skipif(MAKE is None, reason="needs make")


def dry_run(*args: str, **env: str) -> str:
    """What `make -n <args>` would run (nothing is run), without the caller's settings."""
    clean = {
        name: value
        for name, value in os.environ.items()
        if name not in {"APP_BASE_URL", "STRIPE_SECRET_KEY", "STRIPE_API_BASE", "MAKEFLAGS"}
    }
    assert MAKE is not None
    done = subprocess.run(  # noqa: S603 (our own Makefile, dry run)
        [MAKE, "-n", *args], cwd=ROOT, env={**clean, **env},
        capture_output=True, text=True, check=True,
    )
    return done.stdout


def test_make_run_derives_the_addresses_from_its_ports():
    out = dry_run("run", "APP_PORT=5600", "SANDBOX_PORT=12600")
    assert 'export APP_BASE_URL="http://127.0.0.1:5600"' in out
    assert "export STRIPE_API_BASE=http://127.0.0.1:12600" in out
    assert "SANDBOX_WEBHOOK_URLS=http://127.0.0.1:5600/webhooks/stripe " in out
    assert "SANDBOX_CONNECT_WEBHOOK_URLS=http://127.0.0.1:5600/webhooks/stripe/connect" in out
    assert "-m sandbox --port 12600" in out and "run --port 5600" in out
    assert "5000" not in out and "12111" not in out


def test_an_app_base_url_from_the_environment_wins():
    out = dry_run("run", "APP_PORT=5600", APP_BASE_URL="https://coach.example")
    assert 'export APP_BASE_URL="https://coach.example"' in out


def test_make_cli_talks_to_the_sandbox_of_the_same_ports():
    out = dry_run("cli", "CMD=payments charge-due", "APP_PORT=5600", "SANDBOX_PORT=12600")
    assert 'export APP_BASE_URL="http://127.0.0.1:5600"' in out
    assert "export STRIPE_API_BASE=http://127.0.0.1:12600" in out
    assert "flask --app app payments charge-due" in out
