"""Admin: the review queue (accept or refund held payments) and manual payments."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from admin import confirm, restate
from admin.forms import ManualPaymentForm, ReviewDecisionForm
from admin.views import bp
from contracts.models import Contract
from contracts.money import format_money
from database.transactions import commit_or_refusal
from extensions import db
from payments import manual, plans, refunds
from payments.checkout import review
from payments.manual import ManualPaymentRefused
from payments.models import Payment


@bp.get("/reviews")
def reviews() -> str:
    held = review.held_payments()
    return render_template(
        "admin/reviews.html",
        section="reviews",
        held=held,
        shortfalls={p.id: review.shortfall(p, p.contract) for p in held},
        form=ReviewDecisionForm(),
    )


@bp.post("/reviews/<int:payment_id>/<any(accept, refund):decision>")
def review_decide(payment_id: int, decision: str) -> str | Response:
    form = ReviewDecisionForm()
    if not form.validate_on_submit():
        flash("Write a note saying why, then decide again.", "warning")
        return redirect(url_for("admin.reviews"))
    note = form.note.data or ""
    waive = bool(form.waive_shortfall.data)
    held = db.get_or_404(Payment, payment_id)
    if decision == "refund" and held.held_for_review:  # decided already: the service says so
        page = confirm.ask(restate.held_payment_refund(held, refunds.void_refund_amount(held),
                                                       note))
        if page is not None:
            return page
    try:
        payment, refused = commit_or_refusal(
            lambda: review.accept_held_payment(payment_id, current_user, note,
                                               waive_shortfall=waive)
            if decision == "accept"
            else review.refund_held_payment(payment_id, current_user, note),
            review.ReviewRefused,
        )
    except LookupError:
        abort(404)
    if refused or payment is None:
        flash(refused or "", "warning")
        return redirect(url_for("admin.reviews"))
    done = "accepted: it counts for its contract" if decision == "accept" else (
        "refused and refunded")
    flash(f"Payment #{payment.id} {done}.", "success")
    return redirect(url_for("admin.payment_detail", payment_id=payment.id))


@bp.route("/contracts/<int:contract_id>/manual-payment", methods=["GET", "POST"])
def manual_payment(contract_id: int) -> str | Response:
    contract = db.session.get(Contract, contract_id) or abort(404)
    form = ManualPaymentForm().offer(
        [
            (option.instalments, f"The deposit of a plan of {option.instalments} instalments: "
             f"{format_money(option.deposit, contract.currency)}")
            for option in plans.options(contract)
        ]
    )
    if form.validate_on_submit():
        terms = form.terms
        refused = manual.manual_refusal(
            contract, received_on=terms["received_on"], instalments=terms["instalments"]
        )
        if refused is None:
            page = confirm.ask(restate.manual_payment(contract, admin=current_user, **terms))
            if page is not None:
                return page
            try:
                payment = manual.record_manual_payment(
                    contract.id, current_user, note=form.note.data or "", **terms
                )
                db.session.commit()
            except ManualPaymentRefused as exc:
                db.session.rollback()
                refused = str(exc)
            else:
                flash("Manual payment recorded; the contract is active.", "success")
                return redirect(url_for("admin.payment_detail", payment_id=payment.id))
        flash(refused, "warning")
        return redirect(url_for("admin.contract_detail", contract_id=contract_id))
    return render_template(
        "admin/manual_payment.html", section="contracts", contract=contract, form=form
    )
