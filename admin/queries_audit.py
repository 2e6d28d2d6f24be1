"""Read models of the audit trail: the filtered log, and the entries about given objects."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_, select

from accounts.models import User
from accounts.timezones import zone_of
from admin.listing import (
    Page,
    date_arg,
    distinct_values,
    int_arg,
    keyset_page,
    query_args,
    text_arg,
)
from audit.models import AuditEntry
from contracts.models import CoachingSession
from extensions import db


@dataclass(frozen=True)
class AuditFilters:
    # An admin's email, or a label the system acts under ("system", "stripe", "stripe:webhook").
    actor: str | None = None
    action: str | None = None
    object_type: str | None = None
    object_id: int | None = None
    # Days as read in the viewer's time zone, both included.
    date_from: date | None = None
    date_to: date | None = None

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> AuditFilters:
        actor = text_arg(args, "actor", 254)
        return cls(
            actor=actor.lower() if actor else None,
            action=text_arg(args, "action", 60),
            object_type=text_arg(args, "object_type", 40),
            object_id=int_arg(args, "object_id"),
            date_from=date_arg(args, "from"),
            date_to=date_arg(args, "to"),
        )

    def as_args(self) -> dict[str, str]:
        return query_args(
            actor=self.actor,
            action=self.action,
            object_type=self.object_type,
            object_id=self.object_id,
            **{"from": self.date_from, "to": self.date_to},
        )

    @property
    def active(self) -> bool:
        return bool(self.as_args())


@dataclass(frozen=True)
class AuditRow:
    """An entry as the log shows it."""

    entry: AuditEntry
    before: str  # compact JSON; empty when the entry has none
    after: str
    # For an entry about a coaching session: its contract, whose page shows the session.
    contract_id: int | None = None


def _start_of(day: date, zone_name: str) -> datetime:
    # Midnight on the viewer's wall clock; a zone that skips midnight has it an hour later.
    return datetime.combine(day, time(), tzinfo=zone_of(zone_name))


def audit_page(filters: AuditFilters, after: int | None, zone_name: str) -> Page[AuditRow]:
    """Entries matching `filters`, newest first; dates are read in `zone_name`."""
    query = select(AuditEntry)
    if filters.actor:
        query = query.where(
            or_(
                AuditEntry.actor_label == filters.actor,
                # "stripe" also finds what Stripe reported through a channel ("stripe:webhook").
                AuditEntry.actor_label.startswith(f"{filters.actor}:", autoescape=True),
                # The admin's current email finds their entries even under an older label.
                AuditEntry.actor_id.in_(select(User.id).where(User.email == filters.actor)),
            )
        )
    if filters.action:
        query = query.where(AuditEntry.action == filters.action)
    if filters.object_type:
        query = query.where(AuditEntry.object_type == filters.object_type)
    if filters.object_id is not None:
        query = query.where(AuditEntry.object_id == filters.object_id)
    if filters.date_from:
        query = query.where(AuditEntry.created_at >= _start_of(filters.date_from, zone_name))
    if filters.date_to:
        end = _start_of(filters.date_to + timedelta(days=1), zone_name)
        query = query.where(AuditEntry.created_at < end)
    page = keyset_page(query, AuditEntry.id, after)
    return Page(audit_rows(page.rows), page.next_after)


def audit_choices() -> dict[str, list[str]]:
    """The actions and object types the trail holds, for the filters' selects."""
    return {
        "actions": distinct_values(AuditEntry.action),
        "object_types": distinct_values(AuditEntry.object_type),
    }


def entries_about(objects: Mapping[str, Iterable[int]]) -> list[AuditRow]:
    """Every entry about the given objects ({table name: ids}), newest first."""
    clauses: list[ColumnElement[bool]] = [
        and_(AuditEntry.object_type == table, AuditEntry.object_id.in_(list(ids)))
        for table, ids in objects.items()
        if ids
    ]
    entries = db.session.scalars(
        select(AuditEntry).where(or_(false(), *clauses)).order_by(AuditEntry.id.desc())
    )
    return audit_rows(list(entries))


def audit_rows(entries: Sequence[AuditEntry]) -> list[AuditRow]:
    """The entries with their JSON made compact and their sessions' contracts found
    (one query for the lot)."""
    session_ids = {e.object_id for e in entries if e.object_type == CoachingSession.__tablename__}
    contract_of: dict[int, int] = {}
    if session_ids:
        rows = db.session.execute(
            select(CoachingSession.id, CoachingSession.contract_id).where(
                CoachingSession.id.in_(session_ids)
            )
        )
        contract_of = {session_id: contract_id for session_id, contract_id in rows}
    return [
        AuditRow(
            entry=e,
            before=_compact(e.before),
            after=_compact(e.after),
            contract_id=contract_of.get(e.object_id)
            if e.object_type == CoachingSession.__tablename__
            else None,
        )
        for e in entries
    ]


def _compact(value: dict[str, Any] | None) -> str:
    if not value:
        return ""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
