"""Column types shared by every model, so SQLite and PostgreSQL behave alike."""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterator
from contextlib import contextmanager
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


def lock_sqlite(session: Any, column: Any, value: Any) -> None:
    """Serialise writers on SQLite, where `SELECT ... FOR UPDATE` is silently ignored.

    SQLite has no row locks, and its Python driver opens a transaction only at
    the first write, so two requests could read the same row and both act on
    it. A no-op UPDATE of the rows where `column` equals `value` takes the
    database's write lock now: a concurrent request waits here until this
    transaction ends, then reads fresh data. On PostgreSQL this does nothing;
    the caller's FOR UPDATE locks the row.
    """
    if session.get_bind().dialect.name != "sqlite":
        return
    if session.connection().connection.driver_connection.in_transaction:
        return  # this transaction has written already, so it holds the write lock
    session.execute(_touch_where(column), {"_value": value})


@functools.cache
def _touch_where(attribute: Any) -> sa.Update:
    # A plain UPDATE on the mapped column's table, built once per column.
    column = attribute.property.columns[0]
    table = column.table
    return sa.update(table).where(column == sa.bindparam("_value")).values(id=table.c.id)


def select_for_update(session: Any, query: Any, column: Any, value: Any) -> Any:
    """The one row `query` finds where `column` equals `value`, locked until the
    transaction ends.

    PostgreSQL locks the row (SELECT ... FOR UPDATE); SQLite, which has no row
    locks, takes its database write lock first (see `lock_sqlite`). The row is
    read fresh even if the session had loaded it before the lock was granted.
    """
    lock_sqlite(session, column, value)
    return session.scalar(
        query.where(column == value).with_for_update().execution_options(populate_existing=True)
    )


def table_of(model: type[Any]) -> sa.Table:
    """The Core table behind a mapped class, for plain INSERT and UPDATE statements."""
    table = model.__table__
    if not isinstance(table, sa.Table):
        raise TypeError(f"{model.__name__} is not mapped to a single table")
    return table


def update_row(session: Any, table: sa.Table, row_id: int, **values: Any) -> None:
    """UPDATE the row of `table` with this id, setting `values` (by column name).

    A plain statement for hot paths that read rows without the ORM; built once
    per table, its SET columns come from each call's parameters. Columns with
    `onupdate` (updated_at) are set too.
    """
    session.execute(_update_by_id(table), {"_id": row_id, **values})


@functools.cache
def _update_by_id(table: sa.Table) -> sa.Update:
    return sa.update(table).where(table.c.id == sa.bindparam("_id"))


@contextmanager
def one_round_trip(session: Any) -> Iterator[None]:
    """Send the statements executed in the block to the database in one round trip.

    On PostgreSQL (psycopg 3) the block runs in pipeline mode: each statement
    is sent at once but its result is read only when the block ends, so N writes
    cost one network round trip instead of N. Only for INSERT and UPDATE
    statements without RETURNING whose results nobody reads inside the block
    (no ORM flush, no rowcount). A statement that fails raises, wrapped like any
    other SQLAlchemy error, when the block ends. SQLite has no round trips: the
    block runs as it is.
    """
    if session.get_bind().dialect.name != "postgresql":
        yield
        return
    session.flush()  # the unit of work reads row counts: it must not run in the block
    connection = session.connection()
    driver = connection.connection.driver_connection
    dbapi = connection.dialect.loaded_dbapi
    try:
        with driver.pipeline():
            yield
    except dbapi.Error as error:
        raise sa.exc.DBAPIError.instance(None, None, error, dbapi.Error) from error


def tune_sqlite(engine: sa.Engine) -> None:
    """Set up every new connection to an SQLite database the way the app needs it.

    - Foreign keys are enforced (SQLite leaves them off unless asked, per connection).
    - Write-ahead log: readers never wait for the writer (several app processes
      share one file), and a commit costs one sync of the log instead of the
      rollback journal's several, so the write lock is held for less time.
      Durability is unchanged: `synchronous` stays FULL.

    Nothing is done for other databases.
    """
    if engine.dialect.name != "sqlite":
        return

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA foreign_keys=ON")
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
