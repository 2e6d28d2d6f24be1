"""The floor for the webhook benchmark: the least a Stripe webhook endpoint must do.

A plain WSGI app (no Flask): for each POST it verifies the signature with
`stripe.Webhook.construct_event`, then in one transaction inserts the event id
into `floor_events` (unique, so a redelivery is a no-op) and marks one
`contracts_floor` row active. `GET /healthz` answers once the database does.

Settings from the environment: `DATABASE_URL` (an SQLAlchemy URL; `postgresql://`
means psycopg 3) and `STRIPE_WEBHOOK_SECRET`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from typing import Any

import stripe
from sqlalchemy import (
    Column,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    insert,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError

metadata = MetaData()
floor_events = Table(
    "floor_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("event_id", String(255), nullable=False, unique=True),
)
contracts_floor = Table(
    "contracts_floor",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("status", String(20), nullable=False),
)


def sqlalchemy_url(url: str) -> str:
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


_engine: Engine | None = None


def engine() -> Engine:
    """One engine per process, made on first use (after gunicorn forked the worker)."""
    global _engine
    if _engine is None:
        _engine = create_engine(sqlalchemy_url(os.environ["DATABASE_URL"]))
    return _engine


StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def _reply(start_response: StartResponse, status: str, body: dict[str, Any]) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    )
    return [data]


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
    if method == "GET" and path == "/healthz":
        with engine().connect() as conn:
            conn.execute(text("SELECT 1"))
        return _reply(start_response, "200 OK", {"status": "ok"})
    if method != "POST" or path != "/webhooks/stripe":
        return _reply(start_response, "404 Not Found", {"error": "not found"})
    length = int(environ.get("CONTENT_LENGTH") or 0)
    payload = environ["wsgi.input"].read(length)
    try:
        event = stripe.Webhook.construct_event(
            payload, environ.get("HTTP_STRIPE_SIGNATURE", ""), os.environ["STRIPE_WEBHOOK_SECRET"]
        )
    except (ValueError, stripe.SignatureVerificationError) as exc:
        return _reply(start_response, "400 Bad Request", {"error": str(exc)})
    contract_id = int(event["data"]["object"]["metadata"]["contract_id"])
    try:
        with engine().begin() as conn:
            conn.execute(insert(floor_events).values(event_id=event["id"]))
            conn.execute(
                update(contracts_floor)
                .where(contracts_floor.c.id == contract_id)
                .values(status="active")
            )
    except IntegrityError:
        return _reply(start_response, "200 OK", {"received": True, "outcome": "duplicate"})
    return _reply(start_response, "200 OK", {"received": True, "outcome": "fulfilled"})
