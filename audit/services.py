from __future__ import annotations

from typing import Any

from sqlalchemy import insert

from accounts.models import User
from audit.models import AuditEntry
from db_types import table_of, utcnow
from extensions import db

# A plain INSERT, built once: no ORM bookkeeping, and no RETURNING (the id is never
# read), so it can be sent in one round trip with other writes (`one_round_trip`).
_INSERT = insert(table_of(AuditEntry)).inline()


def record(
    action: str,
    obj: Any | tuple[str, int],
    *,
    actor: User | None = None,
    actor_label: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Append an audit entry for `obj` in the current transaction.

    `obj` is any model with an id, or a (table name, id) pair for a row read
    without the ORM. A plain INSERT, sent at once: entries are never read back
    or changed in the request that writes them, so they need none of the ORM's
    bookkeeping.
    """
    object_type, object_id = obj if isinstance(obj, tuple) else (obj.__tablename__, obj.id)
    db.session.execute(
        _INSERT,
        {
            "actor_id": actor.id if actor else None,
            "actor_label": actor_label or (actor.email if actor else "system"),
            "action": action,
            "object_type": object_type,
            "object_id": object_id,
            "before": before,
            "after": after,
            "created_at": utcnow(),
        },
    )
