"""Sandbox settings: from the environment, overridden by create_app's dict, and the test
knobs changeable at run time through `POST /_sandbox/config`."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from decimal import Decimal
from typing import Any

# Not a secret: the well-known development default the app uses too, so that a fresh
# checkout verifies sandbox webhooks without configuration.
DEFAULT_SECRET = "whsec_coachpact_sandbox_development"  # noqa: S105
# The same for the Connect endpoints (Stripe gives each endpoint a secret of its own).
DEFAULT_CONNECT_SECRET = "whsec_coachpact_sandbox_connect_development"  # noqa: S105


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("", "0", "false", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _seconds(value: Any) -> float:
    number = float(value)
    if number < 0:
        raise ValueError(f"must not be negative: {value!r}")
    return number


def _schedule(value: Any) -> list[float]:
    if isinstance(value, (list, tuple)):
        return [_seconds(v) for v in value]
    return [_seconds(part) for part in str(value).split(",") if part.strip()]


# What a new refund does: Stripe's card refunds usually succeed at once; `pending` stays
# pending until settled through /_sandbox/refunds/{id}/settle; `requires_action` waits for
# the customer (the only state Stripe lets `POST /v1/refunds/{id}/cancel` cancel).
REFUND_OUTCOMES = ("succeeded", "pending", "requires_action")


def _refund_outcome(value: Any) -> str:
    text = str(value).strip()
    if text not in REFUND_OUTCOMES:
        raise ValueError(f"must be one of {', '.join(REFUND_OUTCOMES)}: {value!r}")
    return text


def _offset(value: Any) -> float:
    """The clock's offset: whole seconds ahead of real time (never behind it)."""
    number = float(value)
    if number < 0 or number != int(number):
        raise ValueError(f"must be a whole number of seconds, not negative: {value!r}")
    return number


def _after_retries(value: Any) -> str:
    text = str(value).strip()
    if text not in ("cancel", "unpaid"):
        raise ValueError(f"must be cancel or unpaid: {value!r}")
    return text


def _urls(value: Any) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    return [part.strip() for part in str(value).split(",") if part.strip()]


@dataclass
class Knobs:
    """What `/_sandbox/config` may change while the sandbox runs (all off by default)."""

    webhook_urls: list[str] = field(default_factory=list)           # the platform's endpoints
    connect_webhook_urls: list[str] = field(default_factory=list)   # Connect endpoints
    retry_schedule: list[float] = field(default_factory=lambda: [1, 2, 4, 8, 16, 32])
    webhook_timeout: float = 10.0
    async_settle_seconds: float = 5.0
    duplicate_delivery: bool = False   # send every event twice to each endpoint
    shuffle_window: float = 0.0        # collect events for N s, then deliver them out of order
    delivery_delay: float = 0.0        # wait N s before the first attempt
    drop_first_attempt: bool = False   # the first attempt is lost (never sent), then retried
    hold_events: bool = False          # record events, deliver nothing (reconcile via /v1/events)
    refund_outcome: str = "succeeded"  # new refunds: succeeded, pending or requires_action
    clock_offset: float = 0.0          # the sandbox's clock runs this many seconds ahead
    # Billing: days between a failed invoice payment and each retry (after the previous
    # attempt), and what happens to the subscription when the last retry fails.
    invoice_retry_days: list[float] = field(default_factory=lambda: [3, 5, 7])
    subscription_after_retries: str = "cancel"  # cancel or unpaid


PARSERS = {
    "webhook_urls": _urls, "connect_webhook_urls": _urls,
    "retry_schedule": _schedule, "webhook_timeout": _seconds,
    "async_settle_seconds": _seconds, "duplicate_delivery": _bool, "shuffle_window": _seconds,
    "delivery_delay": _seconds, "drop_first_attempt": _bool, "hold_events": _bool,
    "refund_outcome": _refund_outcome, "clock_offset": _offset,
    "invoice_retry_days": _schedule, "subscription_after_retries": _after_retries,
}
# Environment / create_app names for each knob.
ENV_NAMES = {
    "webhook_urls": "SANDBOX_WEBHOOK_URLS",
    "connect_webhook_urls": "SANDBOX_CONNECT_WEBHOOK_URLS",
    "retry_schedule": "SANDBOX_RETRY_SCHEDULE",
    "webhook_timeout": "SANDBOX_WEBHOOK_TIMEOUT",
    "async_settle_seconds": "SANDBOX_ASYNC_SETTLE_SECONDS",
    "duplicate_delivery": "SANDBOX_DUPLICATE_DELIVERY",
    "shuffle_window": "SANDBOX_SHUFFLE_WINDOW",
    "delivery_delay": "SANDBOX_DELIVERY_DELAY",
    "drop_first_attempt": "SANDBOX_DROP_FIRST_ATTEMPT",
    "hold_events": "SANDBOX_HOLD_EVENTS",
    "refund_outcome": "SANDBOX_REFUND_OUTCOME",
    "clock_offset": "SANDBOX_CLOCK_OFFSET",
    "invoice_retry_days": "SANDBOX_INVOICE_RETRY_DAYS",
    "subscription_after_retries": "SANDBOX_SUBSCRIPTION_AFTER_RETRIES",
}


class Settings:
    """Fixed settings plus the mutable knobs (guarded by a lock: the worker reads them)."""

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        config = config or {}

        def get(name: str, default: Any = None) -> Any:
            if name in config:
                return config[name]
            return os.environ.get(name, default)

        self.db_path: str = str(get("SANDBOX_DB", "instance/sandbox.sqlite3"))
        public = get("SANDBOX_PUBLIC_URL") or ""
        self.public_url: str | None = public.rstrip("/") or None
        self.webhook_secret: str = get("SANDBOX_WEBHOOK_SECRET") or DEFAULT_SECRET
        self.connect_webhook_secret: str = (get("SANDBOX_CONNECT_WEBHOOK_SECRET")
                                            or DEFAULT_CONNECT_SECRET)
        self.start_worker: bool = _bool(get("SANDBOX_WORKER", True))
        # The business name the checkout page shows (Stripe takes it from the account).
        self.merchant_name: str = get("SANDBOX_MERCHANT_NAME") or "Coachpact"
        # Stripe's fee on a charge (percent of the amount plus a fixed part in minor units;
        # zero-decimal currencies pay the percentage only) and how long a charge's money
        # stays pending before it is available (days, on the sandbox's clock).
        self.fee_percent: Decimal = Decimal(str(get("SANDBOX_FEE_PERCENT", "2.9")))
        self.fee_fixed: int = int(get("SANDBOX_FEE_FIXED", 30))
        self.available_after_days: float = _seconds(get("SANDBOX_AVAILABLE_AFTER_DAYS", 2))
        if self.fee_percent < 0 or self.fee_fixed < 0:
            raise ValueError("SANDBOX_FEE_PERCENT and SANDBOX_FEE_FIXED must not be negative")
        self._lock = threading.Lock()
        knobs = Knobs()
        for name, env in ENV_NAMES.items():
            value = get(env)
            if value is not None and value != "":
                setattr(knobs, name, PARSERS[name](value))
        self._knobs = knobs

    @property
    def knobs(self) -> Knobs:
        """A consistent copy of the knobs."""
        with self._lock:
            return Knobs(**asdict(self._knobs))

    def secret_for(self, account: str | None) -> str:
        """The signing secret of the endpoints an event goes to: Connect endpoints have
        their own."""
        return self.connect_webhook_secret if account else self.webhook_secret

    def now(self) -> int:
        """The sandbox's clock: real time plus the `clock_offset` knob. Every `created`,
        `expires_at` and event timestamp comes from here, so a demo can move time forward."""
        with self._lock:
            offset = self._knobs.clock_offset
        return int(time.time() + offset)

    def advance_clock(self, seconds: float) -> Knobs:
        """Move the clock forward by `seconds` (a sandbox tool)."""
        if seconds <= 0 or seconds != int(seconds):
            raise ValueError(f"advance_seconds must be a positive whole number: {seconds!r}")
        with self._lock:
            self._knobs.clock_offset += seconds
        return self.knobs

    def update(self, values: dict[str, Any]) -> Knobs:
        """Apply knob changes; unknown names or bad values raise ValueError (nothing applied)."""
        parsed = {}
        for name, value in values.items():
            if name not in PARSERS:
                known = ", ".join(f.name for f in fields(Knobs))
                raise ValueError(f"unknown setting {name!r} (known: {known})")
            try:
                parsed[name] = PARSERS[name](value)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{name}: {exc}") from None
        with self._lock:
            for name, value in parsed.items():
                setattr(self._knobs, name, value)
        return self.knobs
