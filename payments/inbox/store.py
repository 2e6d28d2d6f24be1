"""The inbox's one write on the webhook's hot path: store an event unless it is known.

`INSERT ... ON CONFLICT DO NOTHING RETURNING id`, in the dialect of the
database at hand (SQLite and PostgreSQL both speak it): a redelivery costs one
statement and no error, and the caller learns whether the event is new. The
statement is built once per dialect with bound parameters: building it anew
was most of the webhook's own CPU time (bench/webhook.py --profile).

The webhook stores its event on a pooled connection of its own, in a transaction of
its own (`store_event`), without the ORM session: the request does nothing else with
the database, and the session's unit of work cost more than the insert itself. Code
that stores events inside a larger transaction (the reconcile) uses `record_event`,
which goes through the session and commits with the caller.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy.dialects import postgresql, sqlite

import clock
from extensions import db
from payments.models import EventStatus, WebhookEvent

_INSERTS: dict[str, Any] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
_COLUMNS = (
    "stripe_event_id", "type", "payload", "object_id", "payment_intent_id", "status",
    "attempts", "received_at", "next_attempt_at",
)


@functools.cache
def _statement(dialect: str) -> Any:
    return (
        _INSERTS[dialect](WebhookEvent.__table__)
        .values({name: bindparam(name) for name in _COLUMNS})
        .on_conflict_do_nothing(index_elements=["stripe_event_id"])
        .returning(WebhookEvent.__table__.c.id)
    )


def _row(event: dict[str, Any], payload: str) -> dict[str, Any]:
    about = event["data"]["object"]
    intent = about.get("id") if about.get("object") == "payment_intent" else about.get(
        "payment_intent"
    )
    moment = clock.now()
    return {
        "stripe_event_id": event["id"],
        "type": event["type"],
        "payload": payload,
        "object_id": about.get("id") if isinstance(about.get("id"), str) else None,
        "payment_intent_id": intent if isinstance(intent, str) else None,
        "status": EventStatus.RECEIVED,
        "attempts": 0,
        "received_at": moment,
        "next_attempt_at": moment,
    }


def store_event(event: dict[str, Any], payload: str) -> int | None:
    """Store a verified event (`payload`: its body as signed) and commit it, on a pooled
    connection of its own. Returns the new row's id, or None if the event was there already.
    """
    with db.engine.begin() as connection:
        return connection.scalar(_statement(connection.dialect.name), _row(event, payload))


def record_event(event: dict[str, Any], payload: str) -> int | None:
    """As `store_event`, in the session's transaction: the caller commits."""
    return db.session.scalar(
        _statement(db.session.get_bind().dialect.name), _row(event, payload)
    )
