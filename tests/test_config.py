"""Settings: production refuses to start without its settings."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from config import ConfigError, load_config


def test_production_without_settings_names_every_missing_one(tmp_path):
    with pytest.raises(ConfigError) as error:
        load_config(str(tmp_path), {"APP_ENV": "production"})
    message = str(error.value)
    for name in ("SECRET_KEY", "DATABASE_URL", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"):
        assert name in message


def test_production_names_only_what_is_missing(tmp_path):
    env = {"APP_ENV": "production", "SECRET_KEY": "s" * 40, "DATABASE_URL": "postgresql://db/x"}
    with pytest.raises(ConfigError) as error:
        load_config(str(tmp_path), env)
    assert "STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET" in str(error.value)
    assert "SECRET_KEY," not in str(error.value).replace("STRIPE_SECRET_KEY,", "")


def test_create_app_refuses_to_start_in_production(monkeypatch):
    from app import create_app

    for name in ("SECRET_KEY", "DATABASE_URL", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("APP_ENV", "production")
    with pytest.raises(ConfigError, match="STRIPE_WEBHOOK_SECRET"):
        create_app()


def test_production_with_settings_is_strict(tmp_path):
    config = load_config(
        str(tmp_path),
        {
            "APP_ENV": "production",
            "SECRET_KEY": "s" * 40,
            "DATABASE_URL": "postgres://user@db/coachpact",
            "STRIPE_SECRET_KEY": "sk_live_abc",
            "STRIPE_WEBHOOK_SECRET": "whsec_abc",
            "STRIPE_CONNECT_WEBHOOK_SECRET": "whsec_connect",
        },
    )
    assert config["SESSION_COOKIE_SECURE"] is True
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://user@db/coachpact"
    assert config["STRIPE_API_BASE"] is None and config["STRIPE_USES_SANDBOX"] is False


def test_development_defaults_use_sqlite_and_the_sandbox(tmp_path):
    config = load_config(str(tmp_path), {})
    assert config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path}/coachpact.sqlite3"
    assert config["STRIPE_USES_SANDBOX"] is True
    assert config["STRIPE_SECRET_KEY"].startswith("sk_test_")
    assert config["SESSION_COOKIE_SECURE"] is False


def test_real_stripe_key_without_webhook_secret_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="STRIPE_WEBHOOK_SECRET and "
                                          "STRIPE_CONNECT_WEBHOOK_SECRET are required"):
        load_config(str(tmp_path), {"STRIPE_SECRET_KEY": "sk_test_real"})
    with pytest.raises(ConfigError, match="STRIPE_CONNECT_WEBHOOK_SECRET is required"):
        load_config(str(tmp_path), {"STRIPE_SECRET_KEY": "sk_test_real",
                                    "STRIPE_WEBHOOK_SECRET": "whsec_a"})
    with pytest.raises(ConfigError, match="STRIPE_WEBHOOK_SECRET is required"):
        load_config(str(tmp_path), {"STRIPE_SECRET_KEY": "sk_test_real",
                                    "STRIPE_WEBHOOK_SECRET": " , ",
                                    "STRIPE_CONNECT_WEBHOOK_SECRET": "whsec_b"})


def test_webhook_secrets_are_comma_separated_for_rotation(tmp_path):
    config = load_config(str(tmp_path), {
        "STRIPE_SECRET_KEY": "sk_test_real",
        "STRIPE_WEBHOOK_SECRET": "whsec_new, whsec_old",
        "STRIPE_CONNECT_WEBHOOK_SECRET": "whsec_connect",
    })
    assert config["STRIPE_WEBHOOK_SECRET"] == ("whsec_new", "whsec_old")
    assert config["STRIPE_CONNECT_WEBHOOK_SECRET"] == ("whsec_connect",)


def test_without_a_stripe_key_both_secrets_are_the_sandboxs(tmp_path):
    from sandbox.settings import DEFAULT_CONNECT_SECRET, DEFAULT_SECRET

    config = load_config(str(tmp_path), {})
    assert config["STRIPE_WEBHOOK_SECRET"] == (DEFAULT_SECRET,)
    assert config["STRIPE_CONNECT_WEBHOOK_SECRET"] == (DEFAULT_CONNECT_SECRET,)


def test_malformed_fee_setting_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="PLATFORM_FEE_PERCENT"):
        load_config(str(tmp_path), {"PLATFORM_FEE_PERCENT": "five"})


def test_the_coachs_least_earning_is_a_percent_the_fee_leaves_room_for(tmp_path):
    assert load_config(str(tmp_path), {})["MINIMUM_COACH_EARNING_PERCENT"] == Decimal(50)
    assert load_config(str(tmp_path), {"MINIMUM_COACH_EARNING_PERCENT": "0"})[
        "MINIMUM_COACH_EARNING_PERCENT"] == 0
    assert load_config(str(tmp_path), {"MINIMUM_COACH_EARNING_PERCENT": "90",
                                       "PLATFORM_FEE_PERCENT": "10"})
    for bad, message in [
        ({"MINIMUM_COACH_EARNING_PERCENT": "half"}, "must be a number"),
        ({"MINIMUM_COACH_EARNING_PERCENT": "-1"}, "must not be negative"),
        ({"MINIMUM_COACH_EARNING_PERCENT": "96"}, "add up to more than 100"),
        ({"MINIMUM_COACH_EARNING_PERCENT": "80", "PLATFORM_FEE_PERCENT": "25"},
         "add up to more than 100"),
    ]:
        with pytest.raises(ConfigError, match=message):
            load_config(str(tmp_path), bad)


def test_production_refuses_password_hashing_cheaper_than_argon2s_own(tmp_path):
    env = {"APP_ENV": "production", "SECRET_KEY": "s" * 40, "DATABASE_URL": "postgresql://db/x",
           "STRIPE_SECRET_KEY": "sk_test_x", "STRIPE_WEBHOOK_SECRET": "whsec_x",
           "STRIPE_CONNECT_WEBHOOK_SECRET": "whsec_y",
           "PASSWORD_HASH_TIME_COST": "1", "PASSWORD_HASH_MEMORY_COST": "8",
           "PASSWORD_HASH_PARALLELISM": "1"}
    with pytest.raises(ConfigError, match="PASSWORD_HASH_TIME_COST, PASSWORD_HASH_MEMORY_COST"):
        load_config(str(tmp_path), env)
    stronger = {**env, "PASSWORD_HASH_TIME_COST": "4", "PASSWORD_HASH_MEMORY_COST": "131072",
                "PASSWORD_HASH_PARALLELISM": "4"}
    assert load_config(str(tmp_path), stronger)["PASSWORD_HASH_TIME_COST"] == 4


def test_the_web_entry_point_is_built_without_alembic(tmp_path):
    """gunicorn's app (`wsgi.py`) never migrates, so it does not carry Alembic; the CLI's
    app has the `flask db` commands."""
    import subprocess
    import sys

    code = (
        "import sys, wsgi\n"
        "assert 'migrate' not in wsgi.app.extensions, wsgi.app.extensions.keys()\n"
        "assert 'alembic' not in sys.modules\n"
        "from app import create_app\n"
        "assert 'migrate' in create_app().extensions\n"
    )
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": f"sqlite:///{tmp_path / 'w.sqlite3'}"}
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(  # noqa: S603 (our own interpreter and code)
        [sys.executable, "-c", code], env=env, cwd=root,
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
