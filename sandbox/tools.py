"""Sandbox-only endpoints under /_sandbox/ (no Stripe equivalent): drive payments without a
browser, settle async payments and pending refunds, open and decide disputes, decide what a
saved card does next, onboard connected accounts, set their balance and pay it out, move the
clock, change the test knobs, inspect deliveries."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, current_app, jsonify, redirect, render_template, request
from werkzeug.wrappers import Response as BaseResponse

from sandbox.engine import OPEN_DISPUTE, PaymentInputError, PayResult
from sandbox.errors import StripeError

if TYPE_CHECKING:
    from sandbox.app import Sandbox

bp = Blueprint("tools", __name__, url_prefix="/_sandbox")


def sandbox() -> Sandbox:
    return current_app.extensions["sandbox"]


def _input() -> dict[str, Any]:
    """Form fields (like the checkout page) or a JSON object."""
    data = request.get_json(silent=True) if request.is_json else None
    if isinstance(data, dict):
        return data
    return request.form.to_dict()


def _flag(data: dict[str, Any], name: str) -> bool:
    """A yes/no input: JSON true/false, or a form's "true"/"1"/"on" (a ticked checkbox)."""
    value = data.get(name)
    if isinstance(value, bool):
        return value
    text = str(value if value is not None else "").strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("", "0", "false", "no", "off"):
        return False
    raise StripeError(f"Invalid boolean: {value}", param=name)


def _reply(body: dict[str, Any]) -> BaseResponse:
    """JSON for scripts and tests (any Accept but a browser's); a browser's form post goes
    back to the refunds page (303)."""
    wanted = request.accept_mimetypes.best_match(["application/json", "text/html"])
    if request.is_json or wanted != "text/html":
        return jsonify(body)
    return redirect("/_sandbox/refunds", 303)


@bp.errorhandler(StripeError)
def stripe_error(exc: StripeError) -> tuple[Response, int]:
    return jsonify(exc.body()), exc.status


@bp.errorhandler(PaymentInputError)
def input_error(exc: PaymentInputError) -> tuple[Response, int]:
    return jsonify({"error": {"type": "invalid_request_error", "code": "invalid_input",
                              "message": exc.message, "param": exc.field}}), 400


def _result(result: PayResult) -> tuple[Response, int]:
    body = {"outcome": result.outcome, "redirect_url": result.redirect_url,
            "error": result.error, "session": result.session,
            "payment_intent": result.payment_intent, "setup_intent": result.setup_intent}
    return jsonify(body), 402 if result.outcome == "declined" else 200


@bp.post("/checkout/sessions/<sid>/pay")
def pay(sid: str) -> tuple[Response, int]:
    """Pay as the page's form would: card_number (+ card_expiry, card_cvc) or bank_account
    (+ routing_number), with email and name. Same code path as the hosted page."""
    return _result(sandbox().engine.pay(sid, {k: str(v) for k, v in _input().items()}))


@bp.post("/checkout/sessions/<sid>/authenticate")
def authenticate(sid: str) -> tuple[Response, int]:
    """Answer a pending 3-D Secure step: outcome=succeeded (approve) or failed."""
    return _result(sandbox().engine.authenticate(sid, str(_input().get("outcome", ""))))


@bp.post("/checkout/sessions/<sid>/settle")
def settle(sid: str) -> Response:
    """Settle a pending bank debit now: outcome=succeeded|failed (default: the account's)."""
    outcome = _input().get("outcome") or None
    return jsonify(sandbox().engine.settle(sid, outcome))


@bp.post("/checkout/sessions/<sid>/expire-now")
def expire_now(sid: str) -> Response:
    return jsonify(sandbox().engine.expire_session(sid, None))


@bp.post("/charges/<charge_id>/dispute")
def dispute(charge_id: str) -> BaseResponse:
    """Open a chargeback on a charge: optional amount (minor units), reason, and refundable
    (is_charge_refundable, default false)."""
    data = _input()
    try:
        amount = int(data["amount"]) if data.get("amount") not in (None, "") else None
    except (TypeError, ValueError):
        raise StripeError(f"Invalid integer: {data.get('amount')}", param="amount",
                          code="parameter_invalid_integer") from None
    reason = str(data.get("reason") or "fraudulent")
    refundable = _flag(data, "refundable")
    return _reply(sandbox().engine.dispute(charge_id, amount, reason, refundable))


@bp.post("/disputes/<dispute_id>/close")
def close_dispute(dispute_id: str) -> BaseResponse:
    """The bank decides an open dispute: outcome=won|lost."""
    outcome = str(_input().get("outcome") or "")
    return _reply(sandbox().engine.decide_dispute(dispute_id, outcome))


@bp.post("/refunds/<refund_id>/settle")
def settle_refund(refund_id: str) -> BaseResponse:
    """Finish a pending refund: outcome=succeeded|failed (+ optional failure_reason, one of
    Stripe's, default declined)."""
    data = _input()
    reason = data.get("failure_reason") or None
    return _reply(sandbox().engine.settle_refund(
        refund_id, str(data.get("outcome") or ""), str(reason) if reason else None))


@bp.route("/payment_methods/<pm_id>/next", methods=["GET", "POST"])
def next_outcome(pm_id: str) -> Response:
    """What a saved card does from now on when charged through the API: outcome=succeed,
    decline (+ decline_code, default insufficient_funds), authentication_required, or default
    (the test card's own behaviour). Sticky until changed; GET shows it."""
    engine = sandbox().engine
    if request.method == "GET":
        return jsonify(engine.next_outcome(pm_id))
    data = _input()
    code = data.get("decline_code") or None
    return jsonify(engine.set_next_outcome(pm_id, str(data.get("outcome") or ""),
                                           str(code) if code else None))


@bp.route("/customers/<customer_id>/next", methods=["GET", "POST"])
def customer_next_outcome(customer_id: str) -> Response:
    """The same for a customer's card: its default, else its only attached card."""
    return next_outcome(sandbox().engine.customer_card(customer_id))


def _int(data: dict[str, Any], name: str) -> int | None:
    value = data.get(name)
    if value in (None, ""):
        return None
    try:
        return int(str(value))
    except ValueError:
        raise StripeError(f"Invalid integer: {value}", param=name,
                          code="parameter_invalid_integer") from None


@bp.post("/accounts/<account_id>/onboard")
def onboard(account_id: str) -> Response:
    """Complete a connected account's onboarding without the browser (what the hosted
    page's "Complete onboarding" button does): account.updated."""
    return jsonify(sandbox().engine.onboard(account_id))


@bp.post("/accounts/<account_id>/require")
def require(account_id: str) -> Response:
    """Stripe asks an onboarded account for more: `fields` (comma-separated requirement
    keys, e.g. individual.verification.document) become currently due: account.updated."""
    fields = [f.strip() for f in str(_input().get("fields") or "").split(",") if f.strip()]
    if not fields:
        raise StripeError("Missing required param: fields.", param="fields")
    return jsonify(sandbox().engine.require(account_id, fields))


@bp.post("/accounts/<account_id>/balance")
def account_balance(account_id: str) -> Response:
    """Set a connected account's balance in one currency: available and/or pending (minor
    units), currency (default: the account's). Answers the account's balance."""
    data = _input()
    currency = data.get("currency") or None
    return jsonify(sandbox().engine.set_account_balance(
        account_id, str(currency) if currency else None, _int(data, "available"),
        _int(data, "pending")))


@bp.post("/balance/top_up")
def top_up() -> Response:
    """Add funds to the platform's available balance: amount (minor units), currency
    (default usd). Answers the platform's balance."""
    data = _input()
    currency = data.get("currency") or None
    return jsonify(sandbox().engine.top_up(str(currency) if currency else None,
                                           _int(data, "amount")))


@bp.post("/accounts/<account_id>/payout")
def account_payout(account_id: str) -> Response:
    """Pay a connected account's available balance out (currency: default the account's):
    payout.created and payout.paid, with the event's `account`."""
    currency = _input().get("currency") or None
    return jsonify(sandbox().engine.payout(account_id, str(currency) if currency else None))


@bp.route("/clock", methods=["GET", "POST"])
def clock() -> tuple[Response, int]:
    """The sandbox's clock. POST advance_seconds=N moves it N seconds forward, or
    offset_seconds=N sets how far ahead of real time it runs (0: real time again)."""
    settings = sandbox().settings
    if request.method == "POST":
        data = _input()
        given = [name for name in ("advance_seconds", "offset_seconds")
                 if data.get(name) not in (None, "")]
        if len(given) != 1:
            raise StripeError("Give one of advance_seconds or offset_seconds.",
                              param="advance_seconds")
        try:
            if given[0] == "advance_seconds":
                settings.advance_clock(float(data["advance_seconds"]))
            else:
                settings.update({"clock_offset": data["offset_seconds"]})
        except ValueError as exc:
            raise StripeError(str(exc), param=given[0]) from None
        # Subscriptions on the sandbox's clock renew (and retry) as time passes.
        sandbox().engine.billing.run_due(None, settings.now())
    now = settings.now()
    return jsonify({"now": now, "iso": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
                    "offset_seconds": int(settings.knobs.clock_offset),
                    "real_now": int(time.time())}), 200


def _date(timestamp: int | None) -> str:
    if not timestamp:
        return ""
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(timestamp))


@bp.get("/refunds")
def refunds_page() -> str:
    """Refunds and disputes, newest first, with buttons to settle and decide them."""
    store = sandbox().store
    refunds, _ = store.page("refund", limit=100)
    disputes, _ = store.page("dispute", limit=100)
    return render_template("refunds.html", refunds=refunds, disputes=disputes,
                           open_dispute=OPEN_DISPUTE, date=_date,
                           knobs=sandbox().settings.knobs)


@bp.route("/config", methods=["GET", "POST"])
def config() -> tuple[Response, int]:
    """Read or change the knobs: JSON or form fields named like the Knobs attributes."""
    if request.method == "POST":
        try:
            knobs = sandbox().settings.update(_input())
        except ValueError as exc:
            return jsonify({"error": {"type": "invalid_request_error", "code": None,
                                      "message": str(exc), "param": None}}), 400
    else:
        knobs = sandbox().settings.knobs
    return jsonify(asdict(knobs)), 200


@bp.get("/deliveries")
def deliveries() -> Response:
    """Deliveries with their attempts, newest first (event_id= filters)."""
    store = sandbox().store
    args: list[Any] = []
    where = ""
    if request.args.get("event_id"):
        where, args = "WHERE event_id = ?", [request.args["event_id"]]
    rows = store.query(f"SELECT * FROM deliveries {where} ORDER BY id DESC LIMIT 500",  # noqa: S608
                       args)
    out = []
    for row in rows:
        attempts = store.query("SELECT * FROM attempts WHERE delivery_id = ? ORDER BY id",
                               (row["id"],))
        event = store.get(row["event_id"]) or {}
        out.append({**dict(row), "type": event.get("type"),
                    "attempt_log": [dict(a) for a in attempts]})
    return jsonify({"data": out})


@bp.get("/")
@bp.get("/events")
def events_page() -> str:
    store = sandbox().store
    events, _ = store.page("event", limit=100)
    rows = []
    for event in events:
        attempts = store.query(
            "SELECT a.*, d.status AS delivery_status FROM attempts a JOIN deliveries d "
            "ON d.id = a.delivery_id WHERE a.event_id = ? ORDER BY a.id", (event["id"],))
        pending = store.query("SELECT * FROM deliveries WHERE event_id = ? AND status = "
                              "'pending' ORDER BY id", (event["id"],))
        rows.append({"event": event, "attempts": attempts, "pending": pending})
    return render_template("events.html", rows=rows, knobs=sandbox().settings.knobs)


@bp.post("/events/<event_id>/resend")
def resend(event_id: str) -> Response | tuple[Response, int]:
    if sandbox().store.get(event_id, "event") is None:
        return jsonify({"error": {"type": "invalid_request_error", "code": "resource_missing",
                                  "message": f"No such event: '{event_id}'",
                                  "param": "id"}}), 404
    queued = sandbox().events.resend(event_id)
    if request.accept_mimetypes.best == "application/json" or request.is_json:
        return jsonify({"queued": queued})
    return redirect("/_sandbox/events", 303)
