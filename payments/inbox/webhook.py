"""Stripe's two webhook endpoints: verify the signature on the raw body, store the event, answer.

`POST /webhooks/stripe` is the platform's endpoint (checkout, payments, refunds, disputes,
transfers); `POST /webhooks/stripe/connect` is the Connect endpoint, which Stripe sends
the events of connected accounts to (`account.updated`: they carry `account`), signed with
a secret of its own. Both are the same view, given the endpoint's secrets, and feed the
same inbox.

Nothing else happens in the request: one INSERT into the inbox in a transaction of its
own (`payments.inbox.store`), and a job enqueued to apply it (`payments.inbox.processing`).
A burst from Stripe costs one row per event; processing capacity grows with consumers.
If the enqueue fails after the commit, the inbox sweep finds the event.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, request
from werkzeug.wrappers import Response

import jobs
from config import webhook_secrets
from extensions import csrf, limiter
from payments.inbox.processing import process_event_job
from payments.inbox.store import store_event
from payments.stripe_api import InvalidWebhook, verify_webhook

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")

# Stripe's events are a few kilobytes; anything this large is not one of them.
MAX_BODY_BYTES = 256 * 1024


@bp.post("/stripe", defaults={"connect": False})
@bp.post("/stripe/connect", defaults={"connect": True})
@csrf.exempt
@limiter.exempt  # Stripe's retries must never meet our per-IP limits
def stripe_webhook(connect: bool) -> tuple[Response, int]:
    length = request.content_length
    if length is None or length > MAX_BODY_BYTES:
        return jsonify(error="missing or oversized body"), 400
    body = request.get_data(cache=False)
    setting = "STRIPE_CONNECT_WEBHOOK_SECRET" if connect else "STRIPE_WEBHOOK_SECRET"
    try:
        event = verify_webhook(body, request.headers.get("Stripe-Signature"),
                               webhook_secrets(current_app.config[setting]))
        _check_endpoint(event, connect)
    except InvalidWebhook as exc:
        return jsonify(error=str(exc)), 400
    row_id = store_event(event, body.decode())
    if row_id is None:
        return jsonify(received=True, duplicate=True), 200
    jobs.enqueue(process_event_job, row_id)
    return jsonify(received=True), 200


def _check_endpoint(event: dict[str, Any], connect: bool) -> None:
    """A connected account's event (`account` set) belongs at the Connect endpoint, any other
    at the platform's: one at the wrong endpoint means a webhook set up at Stripe points at
    the wrong URL, so it is refused for Stripe's dashboard to show."""
    account = event.get("account")
    if connect and not account:
        raise InvalidWebhook(
            "a platform event (no `account`) at the Connect endpoint: point the platform's "
            "webhook at /webhooks/stripe"
        )
    if not connect and account:
        raise InvalidWebhook(
            f"an event of connected account {account} at the platform endpoint: point the "
            "Connect webhook at /webhooks/stripe/connect"
        )
