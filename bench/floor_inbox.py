"""Floor B for the webhook benchmark: the least a durable inbox can do per event.

A plain WSGI callable on the raw database driver (`sqlite3`, or `psycopg` for
PostgreSQL), with no web framework and no ORM. For each POST it verifies the
signature with `stripe.WebhookSignature.verify_header` on the raw body, reads
the event's id and type, and stores id, type and payload with one
`INSERT ... ON CONFLICT (event_id) DO NOTHING` (a redelivery is a no-op), committed
on its own: the connection is in autocommit mode, so the statement is its own
transaction. `GET /healthz` answers once the database does.

Settings from the environment: `DATABASE_URL` (an SQLAlchemy URL: `sqlite:///<path>`,
or `postgresql[+psycopg]://...`) and `STRIPE_WEBHOOK_SECRET`.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterable
from typing import Any

import stripe

TOLERANCE_SECONDS = 300  # as the app's

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def _target(url: str) -> tuple[str, str]:
    """("sqlite", file path) or ("postgresql", libpq URL) for an SQLAlchemy URL."""
    if url.startswith("sqlite:///"):
        return "sqlite", url[len("sqlite:///") :]
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql", "postgresql://" + url[len(prefix) :]
    raise ValueError(f"unsupported DATABASE_URL: {url}")


def connect(url: str) -> Any:
    """A connection in autocommit mode (each statement commits itself)."""
    kind, where = _target(url)
    if kind == "sqlite":
        conn = sqlite3.connect(where, isolation_level=None)  # the driver's 5 s busy timeout
        conn.execute("PRAGMA journal_mode=WAL")  # as the app's connections; synchronous FULL
        return conn
    import psycopg

    return psycopg.connect(where, autocommit=True)


def create_table(url: str) -> None:
    """(Re)create `floor_inbox`: the event id (unique), its type and the body."""
    kind, _ = _target(url)
    key = (
        "INTEGER PRIMARY KEY"
        if kind == "sqlite"
        else "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
    )
    conn = connect(url)
    try:
        conn.execute("DROP TABLE IF EXISTS floor_inbox")
        conn.execute(
            f"CREATE TABLE floor_inbox (id {key}, event_id VARCHAR(255) NOT NULL UNIQUE, "
            "type VARCHAR(100) NOT NULL, payload TEXT NOT NULL)"
        )
    finally:
        conn.close()


def count(url: str) -> int:
    conn = connect(url)
    try:
        return int(conn.execute("SELECT count(*) FROM floor_inbox").fetchone()[0])
    finally:
        conn.close()


INSERTS = {
    "sqlite": "INSERT INTO floor_inbox (event_id, type, payload) VALUES (?, ?, ?) "
    "ON CONFLICT (event_id) DO NOTHING",
    "postgresql": "INSERT INTO floor_inbox (event_id, type, payload) VALUES (%s, %s, %s) "
    "ON CONFLICT (event_id) DO NOTHING",
}

_conn: Any = None
_insert = ""


def _connection() -> Any:
    """One connection per process, made on first use (after gunicorn forked the worker)."""
    global _conn, _insert
    if _conn is None:
        url = os.environ["DATABASE_URL"]
        _insert = INSERTS[_target(url)[0]]
        _conn = connect(url)
    return _conn


def _reply(start_response: StartResponse, status: str, body: dict[str, Any]) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    )
    return [data]


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    global _conn
    method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
    if method == "GET" and path == "/healthz":
        _connection().execute("SELECT 1").fetchone()
        return _reply(start_response, "200 OK", {"status": "ok"})
    if method != "POST" or path != "/webhooks/stripe":
        return _reply(start_response, "404 Not Found", {"error": "not found"})
    length = int(environ.get("CONTENT_LENGTH") or 0)
    payload = environ["wsgi.input"].read(length)
    try:
        stripe.WebhookSignature.verify_header(
            payload,
            environ.get("HTTP_STRIPE_SIGNATURE", ""),
            os.environ["STRIPE_WEBHOOK_SECRET"],
            TOLERANCE_SECONDS,
        )
        text = payload.decode("utf-8")
        event = json.loads(text)
        event_id, event_type = event["id"], event["type"]
    except (ValueError, KeyError, TypeError, stripe.SignatureVerificationError) as exc:
        return _reply(start_response, "400 Bad Request", {"error": str(exc)})
    conn = _connection()
    try:
        conn.execute(_insert, (event_id, event_type, text))
    except Exception:
        _conn = None  # a broken connection: the next request makes a new one
        conn.close()
        raise
    return _reply(start_response, "200 OK", {"received": True})
