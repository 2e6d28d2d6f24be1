"""`POST /webhooks/stripe`: verify Stripe's signature on the raw body, store the event, answer.

Nothing else happens in the request: one INSERT into the inbox, the commit, and
a job enqueued to apply it (`payments.inbox.processing`). A burst from Stripe costs one
row per event; processing capacity grows with consumers. If the enqueue fails
after the commit, the inbox sweep finds the event.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from werkzeug.wrappers import Response

import jobs
from extensions import csrf, db, limiter
from payments.inbox.processing import process_event_job
from payments.inbox.store import record_event
from payments.stripe_api import InvalidWebhook, verify_webhook

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")

# Stripe's events are a few kilobytes; anything this large is not one of them.
MAX_BODY_BYTES = 256 * 1024


@bp.post("/stripe")
@csrf.exempt
@limiter.exempt  # Stripe's retries must never meet our per-IP limits
def stripe_webhook() -> tuple[Response, int]:
    length = request.content_length
    if length is None or length > MAX_BODY_BYTES:
        return jsonify(error="missing or oversized body"), 400
    body = request.get_data(cache=False)
    try:
        event = verify_webhook(body, request.headers.get("Stripe-Signature"))
    except InvalidWebhook as exc:
        return jsonify(error=str(exc)), 400
    row_id = record_event(event, body.decode())
    db.session.commit()
    if row_id is None:
        return jsonify(received=True, duplicate=True), 200
    jobs.enqueue(process_event_job, row_id)
    return jsonify(received=True), 200
