"""The inbox's event table: which handler applies each Stripe event type.

Filled only through `register`, by the packages' init functions
(`payments.init_app` for payments' own types, `offers.init_app` for memberships'
Billing events, `payouts.init_app` for `account.updated`, as payments never imports
the packages above it). A type nobody registered
is recorded as ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Handler = Callable[[dict[str, Any]], str]


class RetryLater(Exception):
    """An event we handle but cannot match yet (its payment is not known yet, say)."""


_handlers: dict[str, Handler] = {}


def register(event_type: str, handler: Handler) -> None:
    """Make `handler` apply the inbox's events of `event_type`.

    Registering the same function again changes nothing (create_app runs many times
    in one process in the tests). A different handler for a type already handled is
    refused: only one can apply an event, and the other would be dropped unnoticed.
    """
    current = _handlers.get(event_type)
    if current is not None and current is not handler:
        raise ValueError(
            f"{event_type!r} is already handled by {_name(current)}; "
            f"refusing a second handler, {_name(handler)}"
        )
    _handlers[event_type] = handler


def handled_types() -> frozenset[str]:
    """The event types with a handler."""
    return frozenset(_handlers)


def handler_for(event_type: str) -> Handler | None:
    """The handler of `event_type`, or None for a type we do not handle."""
    if not _handlers:
        # An empty table would record every event as ignored, for good.
        raise RuntimeError("no event handlers registered: create_app calls payments.init_app")
    return _handlers.get(event_type)


def _name(handler: Handler) -> str:
    return f"{getattr(handler, '__module__', '?')}.{getattr(handler, '__qualname__', handler)!s}"
