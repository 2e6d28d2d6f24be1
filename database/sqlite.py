"""SQLite's per-connection settings."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa


def tune_sqlite(engine: sa.Engine) -> None:
    """Set up every new connection to an SQLite database the way the app needs it.

    - Foreign keys are enforced (SQLite leaves them off unless asked, per connection).
    - Write-ahead log: readers never wait for the writer (the web processes and
      the job consumer share one file), and a commit costs one sync of the log.
      Durability is unchanged: `synchronous` stays FULL.

    Nothing is done for other databases.
    """
    if engine.dialect.name != "sqlite":
        return

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA foreign_keys=ON")
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
