"""The sandbox's own state: Stripe objects, events, webhook deliveries, idempotency keys.

Everything lives in one SQLite file. Objects are stored as JSON rows keyed by
their Stripe id, with a second JSON column (`extra`) for what the sandbox needs
to remember but Stripe never shows (the test card used, the public URL the
session was created under, when an async payment settles, ...).

One connection is shared by every thread behind a re-entrant lock: the sandbox
is a single process serving a handful of requests, and serialising every
operation makes each payment step atomic without any row locking.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    parent TEXT,
    created INTEGER NOT NULL,
    data TEXT NOT NULL,
    extra TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS objects_type ON objects (type, seq);
CREATE INDEX IF NOT EXISTS objects_parent ON objects (parent, seq);

CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    url TEXT NOT NULL,
    status TEXT NOT NULL,            -- pending, succeeded, failed (retries exhausted)
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (status, next_attempt_at);

CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id INTEGER NOT NULL REFERENCES deliveries (id),
    event_id TEXT NOT NULL,
    url TEXT NOT NULL,
    at REAL NOT NULL,
    status_code INTEGER,
    error TEXT,
    duration_ms INTEGER
);

CREATE TABLE IF NOT EXISTS idempotency_keys (
    api_key TEXT NOT NULL,
    key TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    params TEXT NOT NULL,
    status_code INTEGER,             -- NULL while the first request is still running
    body TEXT,
    created REAL NOT NULL,
    PRIMARY KEY (api_key, key)
);
"""


class Store:
    """Thread-safe access to the sandbox's SQLite file."""

    def __init__(self, path: str) -> None:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        # isolation_level=None: we open transactions ourselves in `transaction()`.
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._depth = 0
        with self._lock:
            self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[Store]:
        """Hold the lock and one SQLite transaction; nested calls join the outer one."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self
                finally:
                    self._depth -= 1
                return
            self._db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")
            finally:
                self._depth = 0

    def execute(self, sql: str, args: tuple | list = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, args)

    def query(self, sql: str, args: tuple | list = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # -- Stripe objects -------------------------------------------------------

    def insert(self, obj: dict[str, Any], extra: dict[str, Any] | None = None,
               parent: str | None = None) -> None:
        self.execute(
            "INSERT INTO objects (id, type, parent, created, data, extra) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (obj["id"], obj["object"], parent, obj.get("created") or 0,
             json.dumps(obj), json.dumps(extra or {})),
        )

    def save(self, obj: dict[str, Any], extra: dict[str, Any] | None = None) -> None:
        if extra is None:
            self.execute("UPDATE objects SET data = ? WHERE id = ?", (json.dumps(obj), obj["id"]))
        else:
            self.execute(
                "UPDATE objects SET data = ?, extra = ? WHERE id = ?",
                (json.dumps(obj), json.dumps(extra), obj["id"]),
            )

    def get(self, object_id: str, type_: str | None = None) -> dict[str, Any] | None:
        row = self._row(object_id, type_)
        return json.loads(row["data"]) if row else None

    def get_with_extra(self, object_id: str,
                       type_: str | None = None) -> tuple[dict[str, Any], dict[str, Any]] | None:
        row = self._row(object_id, type_)
        return (json.loads(row["data"]), json.loads(row["extra"])) if row else None

    def _row(self, object_id: str, type_: str | None) -> sqlite3.Row | None:
        rows = self.query("SELECT data, extra, type FROM objects WHERE id = ?", (object_id,))
        if not rows or (type_ is not None and rows[0]["type"] != type_):
            return None
        return rows[0]

    def seq_of(self, object_id: str) -> int | None:
        rows = self.query("SELECT seq FROM objects WHERE id = ?", (object_id,))
        return rows[0]["seq"] if rows else None

    def page(self, type_: str, *, where: str = "", args: tuple | list = (),
             limit: int = 10, starting_after: int | None = None,
             ending_before: int | None = None) -> tuple[list[dict[str, Any]], bool]:
        """One page of objects, newest first, with Stripe's cursor semantics.

        Returns (objects, has_more). `starting_after`/`ending_before` are the
        cursors' sequence numbers (the caller resolved the ids).
        """
        clauses, params = ["type = ?"], [type_]
        if where:
            clauses.append(where)
            params.extend(args)
        order = "DESC"
        if starting_after is not None:
            clauses.append("seq < ?")
            params.append(starting_after)
        elif ending_before is not None:
            # Walk upwards from the cursor, then flip back to newest-first.
            clauses.append("seq > ?")
            params.append(ending_before)
            order = "ASC"
        sql = (f"SELECT data FROM objects WHERE {' AND '.join(clauses)} "  # noqa: S608
               f"ORDER BY seq {order} LIMIT ?")
        rows = self.query(sql, [*params, limit + 1])
        objects = [json.loads(r["data"]) for r in rows[:limit]]
        if order == "ASC":
            objects.reverse()
        return objects, len(rows) > limit

    def children(self, parent: str, type_: str) -> list[dict[str, Any]]:
        rows = self.query(
            "SELECT data FROM objects WHERE parent = ? AND type = ? ORDER BY seq", (parent, type_)
        )
        return [json.loads(r["data"]) for r in rows]

    def ids_where_extra(self, type_: str, json_path: str, op: str, value: Any) -> list[str]:
        """Ids of objects whose `extra` value at json_path compares with value (e.g. due times)."""
        assert op in ("<=", "=", ">=")
        rows = self.query(
            f"SELECT id FROM objects WHERE type = ? AND json_extract(extra, ?) {op} ? "  # noqa: S608
            "ORDER BY seq",
            (type_, json_path, value),
        )
        return [r["id"] for r in rows]

    def ids_where_data(self, type_: str, json_path: str, value: Any) -> list[str]:
        rows = self.query(
            "SELECT id FROM objects WHERE type = ? AND json_extract(data, ?) = ? ORDER BY seq",
            (type_, json_path, value),
        )
        return [r["id"] for r in rows]

    def open_sessions_expired_by(self, timestamp: int) -> list[str]:
        rows = self.query(
            "SELECT id FROM objects WHERE type = 'checkout.session' "
            "AND json_extract(data, '$.status') = 'open' "
            "AND json_extract(data, '$.expires_at') <= ? ORDER BY seq",
            (timestamp,),
        )
        return [r["id"] for r in rows]
