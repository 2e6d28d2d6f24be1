"""Row locks that hold on both databases.

PostgreSQL locks rows with `SELECT ... FOR UPDATE`. SQLite ignores FOR UPDATE
and has one lock for the whole database; its Python driver also opens a
transaction only at the first write, so two processes could read the same row
and both act on it. `lock_one` therefore opens the transaction with
`BEGIN IMMEDIATE` on SQLite, which takes the database's write lock at once: a
concurrent writer waits (up to the driver's busy timeout) until this
transaction ends, then reads fresh data.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, scoped_session

AnySession = Session | scoped_session[Any]

T = TypeVar("T")


def take_write_lock(session: AnySession) -> None:
    """On SQLite, hold the database's write lock until the transaction ends."""
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        return
    driver = connection.connection.driver_connection
    # Once the transaction has written, this connection holds the lock already.
    if driver is not None and not driver.in_transaction:
        driver.execute("BEGIN IMMEDIATE")


def lock_one(session: AnySession, query: Select[Any]) -> Any:
    """The one row `query` finds, locked until the transaction ends and read fresh.

    Fresh: the row's attributes are reloaded even if the session had it already,
    because another transaction may have changed it before the lock was granted.
    """
    take_write_lock(session)
    return session.scalar(query.with_for_update().execution_options(populate_existing=True))


def lock_by_id(session: AnySession, model: type[T], row_id: Any) -> T | None:
    """The row of `model` with this primary key, locked (see `lock_one`)."""
    primary_key = model.id  # type: ignore[attr-defined]
    locked: T | None = lock_one(session, select(model).where(primary_key == row_id))
    return locked
