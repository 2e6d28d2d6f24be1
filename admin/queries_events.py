"""Read models of the webhook event log: the filtered list, an event's payload and payments."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select

from admin.listing import Page, distinct_values, enum_arg, keyset_page, query_args, text_arg
from extensions import db
from payments.models import EventStatus, Payment, WebhookEvent


@dataclass(frozen=True)
class EventFilters:
    type: str | None = None
    status: EventStatus | None = None
    # A Stripe id: the event's own (evt_...), or the object's it is about (cs_, pi_, ch_...).
    stripe_id: str | None = None

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> EventFilters:
        return cls(
            type=text_arg(args, "type", 100),
            status=enum_arg(args, "status", EventStatus),
            stripe_id=text_arg(args, "stripe_id", 255),
        )

    def as_args(self) -> dict[str, str]:
        return query_args(type=self.type, status=self.status, stripe_id=self.stripe_id)

    @property
    def active(self) -> bool:
        return bool(self.as_args())


def event_page(filters: EventFilters, after: int | None) -> Page[WebhookEvent]:
    """Events matching `filters`, newest first."""
    query = select(WebhookEvent)
    if filters.type:
        query = query.where(WebhookEvent.type == filters.type)
    if filters.status:
        query = query.where(WebhookEvent.status == filters.status)
    if filters.stripe_id:
        # Each of the three columns has an index of its own.
        query = query.where(
            or_(
                WebhookEvent.stripe_event_id == filters.stripe_id,
                WebhookEvent.object_id == filters.stripe_id,
                WebhookEvent.payment_intent_id == filters.stripe_id,
            )
        )
    return keyset_page(query, WebhookEvent.id, after)


def event_types() -> list[str]:
    """The event types present in the inbox, for the type filter."""
    return distinct_values(WebhookEvent.type)


def status_counts() -> dict[EventStatus, int]:
    """How many events are in each status (every status listed, zero included)."""
    counted = dict(
        db.session.execute(
            select(WebhookEvent.status, func.count()).group_by(WebhookEvent.status)
        ).all()
    )
    return {status: counted.get(status, 0) for status in EventStatus}


def pretty_payload(payload: str) -> str:
    """The payload as indented JSON; as stored when it is not JSON (it is shown either way)."""
    try:
        parsed: Any = json.loads(payload)
    except ValueError:
        return payload
    return json.dumps(parsed, indent=2, ensure_ascii=False)


def payments_about(event: WebhookEvent) -> list[Payment]:
    """The payments an event concerns: the Stripe ids it names, matched on any of a
    payment's three Stripe ids (a session's, an intent's and a charge's events)."""
    ids = {i for i in (event.object_id, event.payment_intent_id) if i}
    if not ids:
        return []
    return list(
        db.session.scalars(
            select(Payment)
            .where(
                or_(
                    Payment.checkout_session_id.in_(ids),
                    Payment.payment_intent_id.in_(ids),
                    Payment.charge_id.in_(ids),
                )
            )
            .order_by(Payment.id.desc())
        )
    )
