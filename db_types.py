"""Column types shared by every model, so SQLite and PostgreSQL behave alike."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC (used as a callable column default)."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC and always returns aware UTC datetimes.

    SQLite keeps no time zone; without this, the same column would come back
    naive on SQLite and aware on PostgreSQL, and comparisons would break.
    """

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def str_enum(enum_cls: type[enum.Enum], length: int = 24) -> sa.Enum:
    """An Enum column stored as its values in a VARCHAR (no native enum types to migrate)."""
    return sa.Enum(
        enum_cls,
        native_enum=False,
        length=length,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


def lock_sqlite(session: Any, where: Any) -> None:
    """Serialise writers on SQLite, where `SELECT ... FOR UPDATE` is silently ignored.

    SQLite has no row locks, and its Python driver opens a transaction only at
    the first write, so two requests could read the same row and both act on
    it. A no-op UPDATE of the rows matching `where` (a column comparison) takes
    the database's write lock now: a concurrent request waits here until this
    transaction ends, then reads fresh data. On PostgreSQL this does nothing;
    the caller's FOR UPDATE locks the row.
    """
    if session.get_bind().dialect.name != "sqlite":
        return
    table = where.left.table
    session.execute(sa.update(table).where(where).values(id=table.c.id))


def select_for_update(session: Any, query: Any, where: Any) -> Any:
    """The one row `query` finds under `where`, locked for the rest of the transaction.

    PostgreSQL locks the row (SELECT ... FOR UPDATE); SQLite, which has no row
    locks, takes its database write lock first (see `lock_sqlite`). The row is
    read fresh even if the session had loaded it before the lock was granted.
    """
    lock_sqlite(session, where)
    return session.scalar(
        query.where(where).with_for_update().execution_options(populate_existing=True)
    )
