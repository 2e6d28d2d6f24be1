"""Admin: the payments list (filters, search, keyset pages, CSV) and a payment's page."""

from __future__ import annotations

from flask import Response, abort, current_app, render_template, request, stream_with_context
from sqlalchemy import select

import clock
from admin import payment_queries as queries
from admin.views import bp
from extensions import db
from payments.models import Invoice, Payment, PaymentRecordStatus


@bp.get("/payments/list")
def payment_list() -> str:
    filters = queries.parse_filters(request.args)
    rows, next_cursor = queries.page(filters, request.args.get("after"))
    return render_template(
        "admin/payments_list.html",
        section="payments",
        filters=filters,
        rows=rows,
        next_cursor=next_cursor,
        statuses=list(PaymentRecordStatus),
        methods=queries.METHODS,
        sorts=list(queries.SORTS),
    )


@bp.get("/payments/export.csv")
def payment_export() -> Response:
    filters = queries.parse_filters(request.args)
    name = f"coachpact-payments-{clock.now():%Y%m%d-%H%M}.csv"
    return Response(
        stream_with_context(queries.export_csv(filters)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@bp.get("/payments/<int:payment_id>")
def payment_detail(payment_id: int) -> str:
    payment = db.session.get(Payment, payment_id) or abort(404)
    return render_template(
        "admin/payment_detail.html",
        section="payments",
        payment=payment,
        contract=payment.contract,
        timeline=queries.timeline(payment),
        invoice=db.session.scalar(select(Invoice).where(Invoice.payment_id == payment.id)),
        dashboard_url=_stripe_dashboard_url(payment),
    )


def _stripe_dashboard_url(payment: Payment) -> str | None:
    """The payment in Stripe's Dashboard, when the app runs on real Stripe keys."""
    config = current_app.config
    if config["STRIPE_USES_SANDBOX"] or not payment.payment_intent_id:
        return None
    mode = "test/" if config["STRIPE_SECRET_KEY"].startswith("sk_test_") else ""
    return f"https://dashboard.stripe.com/{mode}payments/{payment.payment_intent_id}"
