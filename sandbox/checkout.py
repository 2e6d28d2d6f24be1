"""The hosted checkout page (the session's `url`), its 3-D Secure step, and receipts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from sandbox import shapes
from sandbox.engine import PaymentInputError
from sandbox.errors import StripeError

if TYPE_CHECKING:
    from sandbox.app import Sandbox

bp = Blueprint("checkout", __name__)


def sandbox() -> Sandbox:
    return current_app.extensions["sandbox"]


bp.add_app_template_filter(shapes.format_money, "money")


def _load(sid: str) -> dict[str, Any]:
    try:
        return sandbox().engine.session(sid)
    except StripeError:
        abort(404)


def _render(session: dict[str, Any], *, error: str | None = None, field: str | None = None,
            form: dict[str, str] | None = None, status: int = 200) -> tuple[str, int]:
    engine = sandbox().engine
    pi = (sandbox().store.get(session["payment_intent"])
          if session["payment_intent"] else None)
    if error is None and pi and pi["status"] == "requires_payment_method" \
            and pi["last_payment_error"]:
        error = pi["last_payment_error"]["message"]  # the last attempt's decline, as on Stripe
    if error is None and session["mode"] == "subscription":
        error = engine.session_extra(session["id"]).get("last_error")
    si = _setup_intent(session)
    if error is None and si and si["status"] == "requires_payment_method" \
            and si["last_setup_error"]:
        error = si["last_setup_error"]["message"]
    method = (form or {}).get("payment_method", "card")
    wanted = engine.session_extra(session["id"])["payment_intent_data"]
    saves_card = session["mode"] in ("setup", "subscription") or bool(
        wanted.get("setup_future_usage"))
    return render_template(
        "checkout.html", session=session, items=engine.line_items(session["id"]),
        error=error, field=field, form=form or {}, method=method,
        locked_email=session["customer_email"], payment_intent=pi,
        merchant=sandbox().settings.merchant_name, saves_card=saves_card,
        prefill_email=session["customer_email"] or engine._customer_email(session) or "",
    ), status


def _setup_intent(session: dict[str, Any]) -> dict[str, Any] | None:
    return sandbox().store.get(session["setup_intent"]) if session["setup_intent"] else None


@bp.get("/checkout/<sid>")
def page(sid: str) -> tuple[str, int]:
    return _render(_load(sid))


@bp.post("/checkout/<sid>")
def pay(sid: str) -> Response | tuple[str, int]:
    session = _load(sid)
    form = request.form.to_dict()
    try:
        result = sandbox().engine.pay(sid, form)
    except PaymentInputError as exc:
        return _render(session, error=exc.message, field=exc.field, form=form, status=400)
    except StripeError:
        return _render(_load(sid), status=400)  # expired or complete: the page says so
    if result.outcome == "declined":
        return _render(result.session, error=result.error["message"] if result.error else None,
                       form=form, status=402)
    return redirect(result.redirect_url, 303)


@bp.get("/checkout/<sid>/authenticate")
def authenticate_page(sid: str) -> Response | str:
    session = _load(sid)
    pi = sandbox().store.get(session["payment_intent"]) if session["payment_intent"] else None
    if session["mode"] == "subscription":
        # The subscription's first payment, not yet an object: the card waits in the session.
        if not sandbox().engine.session_extra(sid).get("pending_card"):
            return redirect(url_for("checkout.page", sid=sid), 303)
        return render_template("authenticate.html", session=session, setup_intent=None,
                               payment_intent={"amount": session["amount_total"],
                                               "currency": session["currency"]},
                               merchant=sandbox().settings.merchant_name)
    # A payment to confirm, or (setup mode) a card to save.
    intent = _setup_intent(session) if session["mode"] == "setup" else pi
    if not intent or intent["status"] != "requires_action":
        return redirect(url_for("checkout.page", sid=sid), 303)
    return render_template("authenticate.html", session=session, payment_intent=pi,
                           setup_intent=intent if session["mode"] == "setup" else None,
                           merchant=sandbox().settings.merchant_name)


@bp.post("/checkout/<sid>/authenticate")
def authenticate(sid: str) -> Response:
    _load(sid)
    try:
        result = sandbox().engine.authenticate(sid, request.form.get("outcome", ""))
    except StripeError:
        return redirect(url_for("checkout.page", sid=sid), 303)
    if result.outcome == "succeeded" and result.redirect_url:
        return redirect(result.redirect_url, 303)
    # A failed authentication goes back to the payment form, which shows the reason.
    return redirect(url_for("checkout.page", sid=sid), 303)


@bp.get("/checkout/<sid>/complete")
def complete(sid: str) -> str:
    session = _load(sid)
    return render_template("complete.html", session=session,
                           merchant=sandbox().settings.merchant_name)


@bp.get("/receipts/<charge_id>")
def receipt(charge_id: str) -> str:
    charge = sandbox().store.get(charge_id, "charge")
    if charge is None:
        abort(404)
    pi = sandbox().store.get(charge["payment_intent"]) if charge["payment_intent"] else None
    session_id = None
    if pi:
        found = sandbox().store.get_with_extra(pi["id"], "payment_intent")
        session_id = found[1].get("session") if found else None
    items = sandbox().engine.line_items(session_id) if session_id else []
    return render_template("receipt.html", charge=charge, items=items,
                           merchant=sandbox().settings.merchant_name)
