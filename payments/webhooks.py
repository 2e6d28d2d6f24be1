"""`POST /webhooks/stripe`: Stripe's signed events, verified on the raw body."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request
from werkzeug.wrappers import Response

from extensions import csrf, db, limiter
from payments.services import RetryLater, process_event
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
    try:
        event = verify_webhook(
            request.get_data(cache=False), request.headers.get("Stripe-Signature")
        )
    except InvalidWebhook as exc:
        return jsonify(error=str(exc)), 400
    try:
        outcome = process_event(event)
        db.session.commit()
    except RetryLater as exc:
        db.session.rollback()
        current_app.logger.info("event %s not matched yet: %s", event["id"], exc)
        return jsonify(error="not matched yet; retry later"), 503
    except Exception:
        # Roll back everything, including the event row, so Stripe's retry can succeed.
        db.session.rollback()
        current_app.logger.exception("event %s failed", event["id"])
        return jsonify(error="processing failed"), 500
    return jsonify(received=True, outcome=outcome), 200
