"""Scratch databases for the benchmarks: an SQLite file in the run's folder, or a fresh
PostgreSQL database on a server, dropped by its `cleanup` at the end of the run."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


class BenchError(Exception):
    """The run cannot go on (a server did not start, a database cannot be made, ...)."""


@dataclass
class Database:
    kind: str  # sqlite or postgresql
    uri: str  # SQLAlchemy URL
    cleanup: Callable[[], None] | None = None


def sqlite_database(workdir: Path) -> Database:
    return Database("sqlite", f"sqlite:///{workdir / 'bench.sqlite3'}")


def postgres_database(server_url: str, prefix: str = "coachpact_bench") -> Database:
    """A fresh scratch database on `server_url`; raises BenchError if unreachable."""
    import psycopg
    from psycopg import sql

    from config import database_uri_from_url

    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    try:
        conn = psycopg.connect(server_url, autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        raise BenchError(f"PostgreSQL unreachable at {server_url}: {exc}".strip()) from None
    with conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def drop() -> None:
        with psycopg.connect(server_url, autocommit=True, connect_timeout=3) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    base = server_url.rsplit("/", 1)[0]
    return Database("postgresql", database_uri_from_url(f"{base}/{name}"), drop)


def make_database(
    kind: str, workdir: Path, pg_url: str, prefix: str = "coachpact_bench"
) -> Database:
    """The scratch database of `kind` (sqlite or postgresql); raises BenchError if it
    cannot be made."""
    if kind == "postgresql":
        return postgres_database(pg_url, prefix)
    return sqlite_database(workdir)


def drop(db: Database) -> None:
    """Drop a scratch database that needs it (PostgreSQL's; the SQLite file goes with its
    folder)."""
    if db.cleanup is not None:
        db.cleanup()
        print(f"  dropped the scratch {db.kind} database", flush=True)
