from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy.exc import IntegrityError
from werkzeug.wrappers import Response

from extensions import db
from payments import checkout, refunds
from payments.forms import RefundRequestForm
from payments.history import (
    PAID_ONCE,
    earnings_of,
    money_back,
    open_requests_by_contract,
    payments_of_student,
    receipt_for,
    refunds_by_payment,
)
from payments.records import payments_of
from payments.stripe_api import PaymentProviderError

bp = Blueprint("payments", __name__)


class PayForm(FlaskForm):
    """The pay button: CSRF only; the price always comes from the contract."""


@bp.before_request
@login_required
def require_login() -> None:
    """Every payment page is for the logged-in student of the contract."""


@bp.route("/contracts/<int:contract_id>/pay", methods=["GET", "POST"])
def pay(contract_id: int) -> str | Response:
    contract = checkout.contract_for_student(contract_id, current_user)
    if contract.paid_at is not None:
        flash("This contract is already paid.", "info")
        return redirect(url_for("contracts.detail", contract_id=contract.id))
    form = PayForm()
    if form.validate_on_submit():
        try:
            checkout_url = checkout.start_checkout(contract.id, current_user)
            db.session.commit()
        except (checkout.NotPayable, PaymentProviderError) as exc:
            db.session.rollback()
            flash(str(exc), "danger")
            return redirect(url_for("contracts.detail", contract_id=contract.id))
        except IntegrityError:
            # A simultaneous request for the same contract won; its session is ours too.
            db.session.rollback()
            checkout_url = checkout.start_checkout(contract.id, current_user)
            db.session.commit()
        return redirect(checkout_url, code=303)
    return render_template(
        "payments/pay.html", contract=contract, form=form, payments=payments_of(contract)
    )


@bp.get("/contracts/<int:contract_id>/payment-success")
def success(contract_id: int) -> str | tuple[str, int]:
    session_id = request.args.get("session_id", "")
    try:
        payment = checkout.confirm_return(contract_id, current_user, session_id)
        db.session.commit()
    except PaymentProviderError as exc:
        db.session.rollback()
        flash(str(exc), "warning")
        payment = None
    contract = checkout.contract_for_student(contract_id, current_user)
    if payment is None:
        return render_template("payments/not_found.html", contract=contract), 404
    return render_template("payments/success.html", contract=contract, payment=payment)


@bp.get("/contracts/<int:contract_id>/payment-cancel")
def cancel(contract_id: int) -> str:
    contract = checkout.contract_for_student(contract_id, current_user)
    if contract.paid_at is not None:
        abort(404)
    return render_template("payments/cancel.html", contract=contract, form=PayForm())


@bp.get("/contracts/<int:contract_id>/payments")
def history(contract_id: int) -> str:
    """The student's payment attempts for one contract, with receipts."""
    contract = checkout.contract_for_student(contract_id, current_user)
    return render_template(
        "payments/history.html", contract=contract, payments=payments_of(contract)
    )


@bp.route("/contracts/<int:contract_id>/refund", methods=["GET", "POST"])
def refund_request(contract_id: int) -> str | Response:
    """The contract's refund terms, today's quote, and the student's request for it."""
    contract = checkout.contract_for_student(contract_id, current_user)
    form = RefundRequestForm()
    refused = None
    if form.validate_on_submit():
        try:
            refunds.request_refund(
                contract.id,
                current_user,
                category=form.refund_category,
                reason=form.reason.data,
            )
            db.session.commit()
        except LookupError:
            db.session.rollback()
            abort(404)
        except refunds.RefundRefused as exc:
            db.session.rollback()
            refused = str(exc)
        except IntegrityError:
            # A simultaneous request for the same contract was written first.
            db.session.rollback()
            refused = "You have already asked for a refund on this contract."
        else:
            flash(
                "Your request was sent. An administrator decides on it; you will be told "
                "the outcome.",
                "success",
            )
            return redirect(url_for("payments.refund_request", contract_id=contract.id))
    return render_template(
        "payments/refund_request.html",
        contract=contract,
        form=form,
        refused=refused,
        money=money_back(contract),
    )


@bp.get("/payments")
def mine() -> str:
    """Every payment the student made or started, across their contracts."""
    if not current_user.is_student:
        abort(404)
    payments = payments_of_student(current_user)
    return render_template(
        "payments/my_payments.html",
        payments=payments,
        refunds=refunds_by_payment(p.id for p in payments),
        open_requests=open_requests_by_contract(p.contract_id for p in payments),
        with_receipt=PAID_ONCE,
    )


@bp.get("/payments/<int:payment_id>/receipt")
def receipt(payment_id: int) -> str:
    """A printable receipt, for the student who paid and only once the money arrived."""
    payment = receipt_for(payment_id, current_user)
    return render_template(
        "payments/receipt.html",
        payment=payment,
        contract=payment.contract,
        refunds=refunds_by_payment([payment.id]).get(payment.id, []),
    )


@bp.get("/earnings")
def earnings() -> str:
    """The coach's paid contracts: what each earns, what refunds took back, what is earned."""
    if not current_user.is_coach:
        abort(404)
    return render_template("payments/earnings.html", earnings=earnings_of(current_user))
