from __future__ import annotations

from typing import TYPE_CHECKING, Any

from audit.models import AuditEntry
from extensions import db

if TYPE_CHECKING:
    # For typing only: accounts imports audit, never the other way round at run time.
    from accounts.models import User


def record(
    action: str,
    obj: Any,
    *,
    actor: User | None = None,
    actor_label: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append an audit entry for `obj` (any model with an id) in the current transaction."""
    entry = AuditEntry(
        actor_id=actor.id if actor else None,
        actor_label=actor_label or (actor.email if actor else "system"),
        action=action,
        object_type=obj.__tablename__,
        object_id=obj.id,
        before=before,
        after=after,
    )
    db.session.add(entry)
    return entry
