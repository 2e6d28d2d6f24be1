"""The inbox's one write on the webhook's hot path: store an event unless it is known.

`INSERT ... ON CONFLICT DO NOTHING RETURNING id`, in the dialect of the
database at hand (SQLite and PostgreSQL both speak it): a redelivery costs one
statement and no error, and the caller learns whether the event is new.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite

import clock
from extensions import db
from payments.models import EventStatus, WebhookEvent

_INSERTS: dict[str, Any] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def record_event(event: dict[str, Any], payload: str) -> int | None:
    """Store a verified event (`payload`: its body as signed) in the inbox.

    Returns the new row's id, or None if the event was there already.
    """
    insert = _INSERTS[db.session.get_bind().dialect.name]
    moment = clock.now()
    about = event["data"]["object"]
    intent = about.get("id") if about.get("object") == "payment_intent" else about.get(
        "payment_intent"
    )
    statement = (
        insert(WebhookEvent)
        .values(
            stripe_event_id=event["id"],
            type=event["type"],
            payload=payload,
            object_id=about.get("id") if isinstance(about.get("id"), str) else None,
            payment_intent_id=intent if isinstance(intent, str) else None,
            status=EventStatus.RECEIVED,
            attempts=0,
            received_at=moment,
            next_attempt_at=moment,
        )
        .on_conflict_do_nothing(index_elements=["stripe_event_id"])
        .returning(WebhookEvent.id)
    )
    return db.session.scalar(statement)
