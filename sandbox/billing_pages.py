"""The hosted invoice page (an invoice's `hosted_invoice_url`: pay an open invoice with a
card) and the customer portal (a portal session's `url`: subscriptions, invoices, the card,
cancellation at period end)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from sandbox.engine import PaymentInputError
from sandbox.errors import StripeError

if TYPE_CHECKING:
    from sandbox.app import Sandbox

bp = Blueprint("billing_pages", __name__)


def _date(timestamp: int | None) -> str:
    return time.strftime("%d %b %Y", time.gmtime(timestamp)) if timestamp else ""


bp.add_app_template_filter(_date, "date")

# What a customer reads for each outcome of paying on the hosted invoice page.
PAGE_ERRORS = {"failed": "Your card was declined.",
               "action_required": "Your card asks for authentication; try another card."}


def sandbox() -> Sandbox:
    return current_app.extensions["sandbox"]


def _invoice(invoice_id: str) -> dict[str, Any]:
    invoice = sandbox().store.get(invoice_id, "invoice")
    if invoice is None:
        abort(404)
    return invoice


def _render_invoice(invoice: dict[str, Any], *, error: str | None = None,
                    status: int = 200) -> tuple[str, int]:
    return render_template("invoice.html", invoice=invoice, error=error,
                           merchant=sandbox().settings.merchant_name), status


@bp.get("/invoices/<invoice_id>")
def invoice_page(invoice_id: str) -> tuple[str, int]:
    return _render_invoice(_invoice(invoice_id))


@bp.post("/invoices/<invoice_id>")
def pay_invoice(invoice_id: str) -> Response | tuple[str, int]:
    """Pay an open invoice with a test card typed on the page (on-session: a 3-D Secure
    card is authenticated here)."""
    invoice = _invoice(invoice_id)
    engine = sandbox().engine
    try:
        with sandbox().store.transaction():
            card, number = engine._card(request.form.to_dict())
            customer = engine.customer(invoice["customer"])
            billing = {"email": customer["email"], "name": request.form.get("name") or None,
                       "phone": None}
            pm = engine._new_payment_method(card, number, billing)
            found = sandbox().store.get_with_extra(pm["id"], "payment_method")
            assert found is not None
            outcome = engine.billing.pay_invoice_with_card(invoice_id, *found)
    except PaymentInputError as exc:
        return _render_invoice(invoice, error=exc.message, status=400)
    except StripeError as exc:
        return _render_invoice(_invoice(invoice_id), error=exc.message, status=400)
    if outcome != "paid":
        return _render_invoice(_invoice(invoice_id), error=PAGE_ERRORS[outcome], status=402)
    return redirect(url_for("billing_pages.invoice_page", invoice_id=invoice_id), 303)


def _portal(session_id: str) -> dict[str, Any]:
    session = sandbox().store.get(session_id, "billing_portal.session")
    if session is None:
        abort(404)
    return session


def _render_portal(session: dict[str, Any], *, error: str | None = None,
                   notice: str | None = None, status: int = 200) -> tuple[str, int]:
    store = sandbox().store
    customer_id = session["customer"]
    customer = store.get(customer_id, "customer")
    subs = [store.get(i, "subscription")
            for i in reversed(store.ids_where_data("subscription", "$.customer", customer_id))]
    invoices = [store.get(i, "invoice")
                for i in reversed(store.ids_where_data("invoice", "$.customer", customer_id))]
    billing = sandbox().engine.billing
    names = {sub["id"]: ", ".join(billing._product_name(item["price"])
                                  for item in sub["items"]["data"]) for sub in subs if sub}
    card = None
    default = customer["invoice_settings"]["default_payment_method"] if customer else None
    card_id = default or next((sub["default_payment_method"] for sub in subs
                               if sub and sub["default_payment_method"]), None)
    if card_id:
        card = store.get(card_id, "payment_method")
    return render_template("portal.html", session=session, customer=customer, subs=subs,
                           invoices=[i for i in invoices if i and i["status"] != "draft"],
                           names=names, card=card, error=error, notice=notice,
                           merchant=sandbox().settings.merchant_name), status


@bp.get("/billing_portal/<session_id>")
def portal(session_id: str) -> tuple[str, int]:
    return _render_portal(_portal(session_id))


@bp.post("/billing_portal/<session_id>")
def portal_action(session_id: str) -> Response | tuple[str, int]:
    """The portal's forms: `action=cancel` / `renew` (a subscription's cancellation at period
    end, and undoing it), `action=card` (a new card, which also pays what is past due)."""
    session = _portal(session_id)
    billing = sandbox().engine.billing
    action = request.form.get("action", "")
    try:
        if action in ("cancel", "renew"):
            billing.portal_cancel(session_id, request.form.get("subscription", ""),
                                  action == "cancel")
        elif action == "card":
            declined = billing.portal_replace_card(session_id, request.form.to_dict())
            if declined:
                return _render_portal(session, error=declined, status=402)
        else:
            abort(400)
    except PaymentInputError as exc:
        return _render_portal(session, error=exc.message, status=400)
    except StripeError as exc:
        return _render_portal(session, error=exc.message, status=400)
    return redirect(url_for("billing_pages.portal", session_id=session_id), 303)
