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


def record_event(stripe_event_id: str, event_type: str, payload: str) -> int | None:
    """Store a verified event in the inbox; its row id, or None if it was there already."""
    insert = _INSERTS[db.session.get_bind().dialect.name]
    moment = clock.now()
    statement = (
        insert(WebhookEvent)
        .values(
            stripe_event_id=stripe_event_id,
            type=event_type,
            payload=payload,
            status=EventStatus.RECEIVED,
            attempts=0,
            received_at=moment,
            next_attempt_at=moment,
        )
        .on_conflict_do_nothing(index_elements=["stripe_event_id"])
        .returning(WebhookEvent.id)
    )
    return db.session.scalar(statement)
