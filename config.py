"""Settings from the environment (and `.env` in development).

`load_config` returns a plain dict for `app.config`. In production it refuses to
start while a required setting is missing, naming every missing one at once.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from argon2.profiles import RFC_9106_LOW_MEMORY

# What the app needs in production and has no safe default for.
PRODUCTION_REQUIRED = (
    "SECRET_KEY", "DATABASE_URL", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET",
    "STRIPE_CONNECT_WEBHOOK_SECRET",
)
# The two webhook endpoints' signing secrets: the platform's (`/webhooks/stripe`) and the
# Connect endpoint's (`/webhooks/stripe/connect`, connected accounts' events).
WEBHOOK_SECRET_SETTINGS = ("STRIPE_WEBHOOK_SECRET", "STRIPE_CONNECT_WEBHOOK_SECRET")

# The local Stripe stand-in (sandbox/) used when no Stripe key is set. Its key and
# webhook secrets are public development values, never accepted in production.
SANDBOX_API_BASE = "http://127.0.0.1:12111"
SANDBOX_SECRET_KEY = "sk_test_coachpact_sandbox"  # noqa: S105 (public, development only)
SANDBOX_WEBHOOK_SECRET = "whsec_coachpact_sandbox_development"  # noqa: S105
SANDBOX_CONNECT_WEBHOOK_SECRET = "whsec_coachpact_sandbox_connect_development"  # noqa: S105
DEVELOPMENT_SECRET_KEY = "development-only-secret-key-not-for-production"  # noqa: S105


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the message says which and why."""


def database_uri_from_url(url: str) -> str:
    # psycopg 3 is our PostgreSQL driver; accept the usual URL spellings for it.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def webhook_secrets(value: str | Iterable[str]) -> tuple[str, ...]:
    """A webhook endpoint's signing secrets: several while one is rolled (Stripe keeps the
    old one valid for up to a day), written comma-separated, or already a sequence (as a
    test's override may give it)."""
    parts = value.split(",") if isinstance(value, str) else value
    return tuple(part.strip() for part in parts if part.strip())


def _decimal(name: str, raw: str) -> Decimal:
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value < 0:
        raise ConfigError(f"{name} must not be negative, got {raw!r}")
    return value


def _whole_days(name: str, raw: str, unit: str = "days") -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number of {unit}, got {raw!r}") from None
    if value < 0:
        raise ConfigError(f"{name} must not be negative, got {raw!r}")
    return value


def _day_list(name: str, raw: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in raw.split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"{name} must be whole days separated by commas, got {raw!r}") from None
    if not values or any(b <= a for a, b in zip(values, values[1:], strict=False)) or values[0] < 1:
        raise ConfigError(f"{name} must be increasing whole days from 1, got {raw!r}")
    return values


def _coach_earning_percent(env: dict[str, str]) -> Decimal:
    name = "MINIMUM_COACH_EARNING_PERCENT"
    value = _decimal(name, env.get(name, "50"))
    fee_percent = _decimal("PLATFORM_FEE_PERCENT", env.get("PLATFORM_FEE_PERCENT", "5"))
    # Above 100 - PLATFORM_FEE_PERCENT every proposal would be refused.
    if value + fee_percent > 100:
        raise ConfigError(
            f"{name} ({value}) and PLATFORM_FEE_PERCENT ({fee_percent}) add up to more than "
            f"100, so no proposal could be sent; lower one of them"
        )
    return value


def _password_hash_costs(env: dict[str, str], *, production: bool = False) -> dict[str, int]:
    # Defaults are argon2-cffi's own (what PasswordHasher() uses); tests lower them.
    default = RFC_9106_LOW_MEMORY
    costs = {
        "PASSWORD_HASH_TIME_COST": (default.time_cost, "passes"),
        "PASSWORD_HASH_MEMORY_COST": (default.memory_cost, "KiB"),
        "PASSWORD_HASH_PARALLELISM": (default.parallelism, "lanes"),
    }
    values = {
        name: _whole_days(name, env.get(name, str(value)), unit)
        for name, (value, unit) in costs.items()
    }
    for name in ("PASSWORD_HASH_TIME_COST", "PASSWORD_HASH_PARALLELISM"):
        if values[name] < 1:
            raise ConfigError(f"{name} must be at least 1, got {values[name]}")
    # Argon2's own floor: 8 KiB of memory per lane.
    floor = 8 * values["PASSWORD_HASH_PARALLELISM"]
    if values["PASSWORD_HASH_MEMORY_COST"] < floor:
        raise ConfigError(
            f"PASSWORD_HASH_MEMORY_COST must be at least {floor} (8 KiB per lane of "
            f"PASSWORD_HASH_PARALLELISM), got {values['PASSWORD_HASH_MEMORY_COST']}"
        )
    if production:
        # The cheap costs are for tests; in production they would weaken every password.
        weaker = [name for name, (value, _) in costs.items() if values[name] < value]
        if weaker:
            raise ConfigError(
                f"{', '.join(weaker)} below argon2's production cost; unset them in production"
            )
    return values


def load_config(instance_path: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Build the app's settings from `env` (the process environment by default)."""
    if env is None:
        env = dict(os.environ)
    app_env = env.get("APP_ENV", "development")
    production = app_env == "production"
    payments_mode = env.get("PAYMENTS_MODE", "stripe")
    if payments_mode not in ("stripe", "manual"):
        raise ConfigError(f"PAYMENTS_MODE must be stripe or manual, got {payments_mode!r}")
    if production:
        required = PRODUCTION_REQUIRED if payments_mode == "stripe" else PRODUCTION_REQUIRED[:2]
        missing = [name for name in required if not env.get(name)]
        if missing:
            raise ConfigError(
                "Coachpact cannot start in production without these settings: "
                + ", ".join(missing)
                + ". Set them in the environment."
            )
        if env.get("STRIPE_SECRET_KEY") == SANDBOX_SECRET_KEY:
            raise ConfigError("STRIPE_SECRET_KEY is the sandbox's development key.")

    stripe_key = env.get("STRIPE_SECRET_KEY")
    uses_sandbox = not stripe_key
    secrets = {name: webhook_secrets(env.get(name, "")) for name in WEBHOOK_SECRET_SETTINGS}
    if not uses_sandbox:
        # Never accept unverified webhooks: with real keys both endpoints' secrets are required.
        missing = [name for name, found in secrets.items() if not found]
        if missing:
            verb = "is" if len(missing) == 1 else "are"
            raise ConfigError(f"{' and '.join(missing)} {verb} required when STRIPE_SECRET_KEY "
                              "is set (whsec_..., comma-separated while one is rolled).")

    default_db = "sqlite:///" + str(Path(instance_path) / "coachpact.sqlite3")
    redis_url = env.get("REDIS_URL")
    return {
        "APP_ENV": app_env,
        "SECRET_KEY": env.get("SECRET_KEY") or DEVELOPMENT_SECRET_KEY,
        "SQLALCHEMY_DATABASE_URI": database_uri_from_url(env.get("DATABASE_URL") or default_db),
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "STRIPE_SECRET_KEY": stripe_key or SANDBOX_SECRET_KEY,
        # Each a tuple of secrets (see `webhook_secrets`).
        "STRIPE_WEBHOOK_SECRET": secrets["STRIPE_WEBHOOK_SECRET"] or (SANDBOX_WEBHOOK_SECRET,),
        "STRIPE_CONNECT_WEBHOOK_SECRET": secrets["STRIPE_CONNECT_WEBHOOK_SECRET"]
        or (SANDBOX_CONNECT_WEBHOOK_SECRET,),
        "STRIPE_API_BASE": env.get("STRIPE_API_BASE")
        or (SANDBOX_API_BASE if uses_sandbox else None),
        "STRIPE_USES_SANDBOX": uses_sandbox,
        "PLATFORM_FEE_PERCENT": _decimal(
            "PLATFORM_FEE_PERCENT", env.get("PLATFORM_FEE_PERCENT", "5")
        ),
        # In major units of the contract's currency: 1 means 1.00 USD, 1 JPY.
        "PLATFORM_FEE_MINIMUM": _decimal(
            "PLATFORM_FEE_MINIMUM", env.get("PLATFORM_FEE_MINIMUM", "1")
        ),
        # A proposal must leave its coach at least this percent of its total: on a small
        # total the minimum fee would otherwise take most of it, or all.
        "MINIMUM_COACH_EARNING_PERCENT": _coach_earning_percent(env),
        # Cancelling a session with less notice than this counts it as used.
        "SESSION_CANCEL_NOTICE_HOURS": _decimal(
            "SESSION_CANCEL_NOTICE_HOURS", env.get("SESSION_CANCEL_NOTICE_HOURS", "24")
        ),
        # The refund policy a new contract takes (each contract keeps its own copy): the full
        # total back until the first session is used or this many days after payment.
        "REFUND_FULL_WINDOW_DAYS": _whole_days(
            "REFUND_FULL_WINDOW_DAYS", env.get("REFUND_FULL_WINDOW_DAYS", "14")
        ),
        # Payment plans: the smallest total (major units of the contract's currency) and the
        # most instalments offered; a failed instalment is retried this many days after the
        # first failure, then the contract is past due.
        "PLAN_MINIMUM_TOTAL": _decimal(
            "PLAN_MINIMUM_TOTAL", env.get("PLAN_MINIMUM_TOTAL", "100")
        ),
        "PLAN_MAX_INSTALMENTS": int(_whole_days(
            "PLAN_MAX_INSTALMENTS", env.get("PLAN_MAX_INSTALMENTS", "12")
        )),
        # `manual`: Coachpact runs without Stripe; students pay offline as the pay page
        # explains (PAYMENT_INSTRUCTIONS) and admins record the payments.
        "PAYMENTS_MODE": payments_mode,
        "PAYMENT_INSTRUCTIONS": env.get(
            "PAYMENT_INSTRUCTIONS",
            "Pay by bank transfer to the account your coach gives you, with the contract "
            "number as the reference. An administrator records it when it arrives, and "
            "the contract opens for scheduling at once.",
        ),
        # A completed session's share is transferred to the coach this many days later, so
        # that refunds and disputes surface first.
        "PAYOUT_HOLD_DAYS": _whole_days("PAYOUT_HOLD_DAYS", env.get("PAYOUT_HOLD_DAYS", "3")),
        # Booking: no session closer than this many hours from now, nor further ahead than
        # this many days; a proposal nobody answers expires after this many days.
        "BOOKING_MIN_NOTICE_HOURS": _whole_days(
            "BOOKING_MIN_NOTICE_HOURS", env.get("BOOKING_MIN_NOTICE_HOURS", "12"), "hours"
        ),
        "BOOKING_HORIZON_DAYS": _whole_days(
            "BOOKING_HORIZON_DAYS", env.get("BOOKING_HORIZON_DAYS", "90")
        ),
        # Memberships: a period's unused session credits expire at its end, but up to this
        # many may still be booked in the next period.
        "MEMBERSHIP_ROLLOVER_LIMIT": _whole_days(
            "MEMBERSHIP_ROLLOVER_LIMIT", env.get("MEMBERSHIP_ROLLOVER_LIMIT", "0"), "sessions"
        ),
        "PROPOSAL_EXPIRY_DAYS": _whole_days(
            "PROPOSAL_EXPIRY_DAYS", env.get("PROPOSAL_EXPIRY_DAYS", "14")
        ),
        "PLAN_RETRY_DAYS": _day_list("PLAN_RETRY_DAYS", env.get("PLAN_RETRY_DAYS", "1,3,7")),
        # Argon2 cost of new password hashes; stored hashes carry their own parameters.
        **_password_hash_costs(env, production=production),
        "RATELIMIT_STORAGE_URI": redis_url or "memory://",
        # Background jobs: Redis when REDIS_URL is set, else an SQLite file of their own.
        "REDIS_URL": redis_url,
        "JOBS_SQLITE_PATH": env.get("JOBS_SQLITE_PATH")
        or str(Path(instance_path) / "jobs.sqlite3"),
        "JOBS_QUEUE_NAME": env.get("JOBS_QUEUE_NAME", "coachpact"),
        # Run each job at once where it is enqueued, with no consumer (tests, one-off scripts).
        "JOBS_IMMEDIATE": env.get("JOBS_IMMEDIATE", "") == "1",
        "RATELIMIT_HEADERS_ENABLED": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": production,
        "REMEMBER_COOKIE_SECURE": production,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "PREFERRED_URL_SCHEME": "https" if production else "http",
        # Where the app is reached, for links built outside a request (CLI jobs, mail).
        "APP_BASE_URL": env.get("APP_BASE_URL", "http://127.0.0.1:5000"),
        "BOOTSTRAP_SERVE_LOCAL": True,
        "MAIL_SERVER": env.get("MAIL_SERVER", "localhost"),
        "MAIL_PORT": int(env.get("MAIL_PORT", "25")),
        "MAIL_USE_TLS": env.get("MAIL_USE_TLS", "") == "1",
        "MAIL_USERNAME": env.get("MAIL_USERNAME"),
        "MAIL_PASSWORD": env.get("MAIL_PASSWORD"),
        "MAIL_DEFAULT_SENDER": env.get(
            "MAIL_DEFAULT_SENDER", "Coachpact <no-reply@coachpact.test>"
        ),
        # Outside production and without a mail server, mail is written to the log
        # instead of sent (Flask-Mailman's backends: "smtp", "locmem" for tests, ...).
        "MAIL_BACKEND": env.get("MAIL_BACKEND")
        or ("smtp" if production or env.get("MAIL_SERVER") else "notifications.mail_log"),
    }
