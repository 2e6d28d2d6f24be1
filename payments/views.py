from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import ColumnElement, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import contains_eager, joinedload
from werkzeug.wrappers import Response

import clock
from contracts.models import Contract, ContractStatus
from contracts.services import contract_for_party
from database.transactions import commit_or_refusal
from extensions import db
from payments import checkout, invoices, plans, refunds, stripe_api
from payments.forms import (
    ConfirmForm,
    PayForm,
    PlanCardForm,
    RefundOfferForm,
    RefundRequestForm,
    amount_text,
)
from payments.history import (
    PAID_ONCE,
    earnings_of,
    money_back,
    open_requests_by_contract,
    payments_of_student,
    receipt_for,
    refunds_by_payment,
)
from payments.models import (
    Instalment,
    InstalmentStatus,
    PaymentPlan,
    PaymentRecordStatus,
    PlanStatus,
    RefundStatus,
)
from payments.records import payments_of
from payments.stripe_api import PaymentProviderError
from scheduling import holds
from scheduling.availability import slot_value
from scheduling.picker import slot_picker
from scheduling.sessions import has_scheduled_session

bp = Blueprint("payments", __name__)

# What the pay page promises of a held time: as long as Stripe keeps the session open.
STRIPE_HOLD_MINUTES = 30

# Plans whose instalments are still to be charged: their card matters.
RUNNING_PLANS = (PlanStatus.ACTIVE, PlanStatus.PAUSED)
# "Add a card" without a plan to set the currency of the setup page.
SETUP_CURRENCY = "usd"


@bp.before_request
@login_required
def require_login() -> None:
    """Every payment page is for the logged-in student of the contract."""


def plans_with_instalments(*criteria: ColumnElement[bool]) -> list[PaymentPlan]:
    """Plans matching `criteria`, newest first, with their contract and instalments in one
    query."""
    return list(
        db.session.scalars(
            select(PaymentPlan)
            .join(PaymentPlan.contract)
            .where(*criteria)
            .options(contains_eager(PaymentPlan.contract), joinedload(PaymentPlan.instalments))
            .order_by(PaymentPlan.id.desc())
        ).unique()
    )


@bp.route("/contracts/<int:contract_id>/pay", methods=["GET", "POST"])
def pay(contract_id: int) -> str | Response:
    contract = checkout.contract_for_student(contract_id, current_user)
    if contract.paid_at is not None:
        if contract.plan_instalments:
            flash("The deposit is paid; the instalments are charged to your card on their "
                  "dates.", "info")
            return redirect(url_for("payments.history", contract_id=contract.id, _anchor="plan"))
        flash("This contract is already paid.", "info")
        return redirect(url_for("contracts.detail", contract_id=contract.id))
    manual_only = checkout.manual_only()
    options = [] if manual_only else plans.options(contract)
    attempts = payments_of(contract)
    picking = first_session_offered(contract, attempts, manual_only)
    form = PayForm().offer([option.instalments for option in options])
    if form.validate_on_submit():
        first = form.slot.starts_at if picking else None
        try:
            checkout_url = _checkout_url(contract.id, form.instalments, first)
        except checkout.SlotTaken as exc:
            db.session.rollback()
            form.slot.errors = [str(exc)]  # the page again, the times as they are now
        except (checkout.NotPayable, PaymentProviderError) as exc:
            db.session.rollback()
            flash(str(exc), "danger")
            return redirect(url_for("contracts.detail", contract_id=contract.id))
        else:
            return redirect(checkout_url, code=303)
    hold = holds.live_hold_of(contract) if picking else None
    chosen = form.slot.data or request.args.get("slot") or (
        slot_value(hold.starts_at) if hold else None
    )
    return render_template(
        "payments/pay.html",
        contract=contract,
        form=form,
        options=options,
        manual_only=manual_only,
        payments=attempts,
        picker=slot_picker(contract, chosen) if picking else None,
        hold=hold,
        hold_minutes=STRIPE_HOLD_MINUTES,
    )


def first_session_offered(contract: Contract, attempts: list[Any], manual_only: bool) -> bool:
    """Whether the pay page offers to pick the first session's time: an unpaid pending
    contract paid through Stripe, with nothing on its way and no session booked yet."""
    return (
        not manual_only
        and contract.status is ContractStatus.PENDING
        and not any(p.status is PaymentRecordStatus.PROCESSING for p in attempts)
        and not has_scheduled_session(contract)
    )


def _checkout_url(contract_id: int, instalments: int | None, first: datetime | None) -> str:
    """Start (or reuse) the Checkout session and commit what it wrote."""
    try:
        checkout_url = checkout.start_checkout(
            contract_id, current_user, instalments=instalments, first_session=first
        )
        db.session.commit()
    except IntegrityError:
        # A simultaneous request for the same contract won; its session is ours too.
        db.session.rollback()
        checkout_url = checkout.start_checkout(
            contract_id, current_user, instalments=instalments, first_session=first
        )
        db.session.commit()
    return checkout_url


def payable_by_hand(instalment: Instalment) -> bool:
    """An instalment no sweep will charge: the bank asked for the student's confirmation,
    or its last retry failed. Paying any other one by hand could charge it twice."""
    return (
        instalment.status is InstalmentStatus.SCHEDULED and instalment.needs_authentication
    ) or instalment.status is InstalmentStatus.FAILED


@bp.route(
    "/contracts/<int:contract_id>/instalments/<int:instalment_id>/pay", methods=["GET", "POST"]
)
def pay_instalment(contract_id: int, instalment_id: int) -> str | Response:
    """One plan instalment paid through Checkout: the bank asked the student to confirm it,
    or it failed. The success page settles it on the way back."""
    contract = checkout.contract_for_student(contract_id, current_user)
    try:
        instalment = plans.instalment_for_student(contract.id, instalment_id, current_user)
    except LookupError:
        abort(404)
    form = ConfirmForm()
    if form.validate_on_submit():
        if not payable_by_hand(instalment):
            flash(f"This instalment is {instalment.status.value}; nothing to pay by hand now.",
                  "info")
            return redirect(url_for("payments.pay_instalment", contract_id=contract.id,
                                    instalment_id=instalment.id))
        try:
            checkout_url = checkout.start_instalment_checkout(
                contract.id, instalment.id, current_user
            )
            db.session.commit()
        except (checkout.NotPayable, PaymentProviderError) as exc:
            db.session.rollback()
            flash(str(exc), "danger")
            return redirect(url_for("payments.pay_instalment", contract_id=contract.id,
                                    instalment_id=instalment.id))
        return redirect(checkout_url, code=303)
    return render_template(
        "payments/pay.html",
        contract=contract,
        form=form,
        instalment=instalment,
        payable=payable_by_hand(instalment),
        payments=[p for p in payments_of(contract) if p.instalment_id == instalment.id],
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
    return render_template("payments/success.html", contract=contract, payment=payment,
                           hold=holds.hold_of_payment(payment.id))


@bp.get("/contracts/<int:contract_id>/payment-cancel")
def cancel(contract_id: int) -> str:
    """Back from Checkout without paying: the time held for the first session, if any,
    is released at once (its session expired at Stripe first)."""
    contract = checkout.contract_for_student(contract_id, current_user)
    if contract.paid_at is not None:
        abort(404)
    try:
        released = checkout.release_on_cancel(contract.id, current_user)
        db.session.commit()
    except PaymentProviderError:
        db.session.rollback()
        released = None
    return render_template("payments/cancel.html", contract=contract, form=ConfirmForm(),
                           released=released, hold=holds.live_hold_of(contract))


@bp.get("/contracts/<int:contract_id>/payments")
def history(contract_id: int) -> str:
    """The student's payment attempts for one contract, with receipts."""
    contract = checkout.contract_for_student(contract_id, current_user)
    found = plans_with_instalments(PaymentPlan.contract_id == contract.id)
    return render_template(
        "payments/history.html",
        contract=contract,
        payments=payments_of(contract),
        plan=found[0] if found else None,
        payable_by_hand=payable_by_hand,
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
        withdraw_form=ConfirmForm(),
        refused=refused,
        money=money_back(contract),
    )


@bp.post("/contracts/<int:contract_id>/refund/requests/<int:request_id>/withdraw")
def withdraw_refund_request(contract_id: int, request_id: int) -> Response:
    """The student takes back their request before an administrator decides it."""
    contract = checkout.contract_for_student(contract_id, current_user)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        _, refused = commit_or_refusal(
            lambda: refunds.withdraw_request(request_id, current_user), refunds.RefundRefused
        )
    except LookupError:
        abort(404)
    if refused:
        flash(refused, "warning")
    else:
        flash(f"Your refund request was withdrawn; {contract.coach.name} has been told.",
              "success")
    return redirect(url_for("payments.refund_request", contract_id=contract.id))


@bp.route("/contracts/<int:contract_id>/refund/offer", methods=["GET", "POST"])
def offer_refund(contract_id: int) -> str | Response:
    """The coach gives money back: the form, then a confirmation, then the refund (or the
    offer for an administrator when it is more than the refund terms give)."""
    contract = contract_for_party(contract_id, current_user)
    if contract.coach_id != current_user.id:
        abort(404)
    form = RefundOfferForm(currency=contract.currency)
    money = money_back(contract)
    if request.method == "GET" and money.quote.amount > 0:
        form.amount.data = amount_text(money.quote.amount, contract.currency)
    if not form.validate_on_submit():
        return _offer_page(contract, form, money)
    amount = form.minor_amount or 0
    try:
        seen = refunds.outlook(contract, amount)
        if not form.confirmed:
            return _offer_page(contract, form, money, confirming=seen)
        seen, made_id = refunds.offer_refund(contract.id, current_user, amount=amount,
                                             reason=form.reason.data or "")
        db.session.commit()
    except refunds.RefundRefused as exc:
        db.session.rollback()
        form.amount.errors = [str(exc)]
        return _offer_page(contract, form, money_back(contract))
    except IntegrityError:  # the student's request was written first
        db.session.rollback()
        form.amount.errors = ["The student has just asked for a refund; an administrator "
                              "decides it first."]
        return _offer_page(contract, form, money_back(contract))
    if seen.straight_through:
        sent = refunds.send_now(made_id)
        flash(refunds.describe(sent),
              "danger" if sent.status is RefundStatus.FAILED else "success")
    else:
        flash("Your offer is more than the refund terms give now, so an administrator decides "
              "it; you and the student will be told.", "success")
    return redirect(url_for("payments.offer_refund", contract_id=contract.id))


def _offer_page(contract: Contract, form: RefundOfferForm, money: Any,
                confirming: refunds.OfferOutlook | None = None) -> str:
    standing = refunds.refundable(contract)
    return render_template("payments/refund_offer.html", contract=contract, form=form,
                           money=money, confirming=confirming, left=standing.refundable,
                           blocked=refunds.refusal(contract, standing))


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
        invoices=invoices.invoices_by_payment(p.id for p in payments),
        plans=plans_with_instalments(Contract.student_id == current_user.id),
        payable_by_hand=payable_by_hand,
        has_customer=checkout.customer_of(current_user) is not None,
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
        invoice=invoices.invoices_by_payment([payment.id]).get(payment.id),
    )


@bp.get("/invoices/<int:invoice_id>")
def invoice(invoice_id: int) -> str:
    """A printable invoice, for the student it was issued to or an admin; anyone else 404."""
    found = invoices.invoice_for(invoice_id, current_user)
    return render_template(
        "payments/invoice.html", invoice=found, payment=found.payment, contract=found.contract
    )


@bp.get("/earnings")
def earnings() -> str:
    """The coach's paid contracts: what each earns, what refunds took back, what is earned."""
    if not current_user.is_coach:
        abort(404)
    return render_template("payments/earnings.html", earnings=earnings_of(current_user))


# --- the student's saved cards ------------------------------------------------------------


@dataclass(frozen=True)
class SavedCard:
    """A card saved at Stripe, as the page shows it."""

    id: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int

    @classmethod
    def of(cls, method: Any) -> SavedCard:
        card = method.to_dict().get("card") or {}
        return cls(
            id=method.id,
            brand=str(card.get("brand") or "card"),
            last4=str(card.get("last4") or "????"),
            exp_month=int(card.get("exp_month") or 0),
            exp_year=int(card.get("exp_year") or 0),
        )

    @property
    def label(self) -> str:
        return f"{self.brand.title()} •••• {self.last4}"


def _students_only() -> None:
    if not current_user.is_student:
        abort(404)


def _saved_cards() -> list[SavedCard]:
    return [SavedCard.of(method) for method in plans.saved_cards(current_user)]


def _running_plans() -> list[PaymentPlan]:
    return plans_with_instalments(
        Contract.student_id == current_user.id, PaymentPlan.status.in_(RUNNING_PLANS)
    )


def _charged_cards(running: list[PaymentPlan]) -> dict[int, str | None]:
    """The card each plan charges (`plans.card_of` asks Stripe once a plan, then remembers)."""
    charged = {plan.id: plans.card_of(plan) for plan in running}
    db.session.commit()
    return charged


@bp.get("/payment-methods")
def payment_methods() -> str | Response:
    """The student's saved cards, the card each plan charges, and adding or removing one."""
    _students_only()
    session_id = request.args.get("session_id")
    if session_id:
        # Back from Checkout's setup page: note the new card, then show the page afresh.
        _card_added(session_id)
        return redirect(url_for("payments.payment_methods"), code=303)
    running = _running_plans()
    try:
        cards = _saved_cards()
        charged = _charged_cards(running)
    except PaymentProviderError as exc:
        flash(str(exc), "warning")
        cards, charged = [], {plan.id: plan.payment_method_id for plan in running}
    has_customer = checkout.customer_of(current_user) is not None
    return render_template(
        "payments/payment_methods.html",
        cards=cards,
        plans=running,
        charged=charged,
        users_of={card.id: [plan for plan in running if charged.get(plan.id) == card.id]
                  for card in cards},
        has_customer=has_customer,
        form=ConfirmForm(),
        card_form=PlanCardForm(formdata=None),
    )


@bp.post("/payment-methods/plans/<int:plan_id>")
def plan_card(plan_id: int) -> Response:
    """The student chooses the saved card a plan charges."""
    _students_only()
    form = PlanCardForm()
    if not form.validate_on_submit():
        flash("Choose one of your saved cards.", "warning")
        return redirect(url_for("payments.payment_methods"))
    try:
        plan = plans.use_card(plan_id, form.payment_method.data, current_user)
        db.session.commit()
    except LookupError:
        db.session.rollback()
        abort(404)
    except (plans.PlanRefused, PaymentProviderError) as exc:
        db.session.rollback()
        flash(str(exc), "danger")
    else:
        flash(f"Your plan for “{plan.contract.title}” now charges this card.", "success")
    return redirect(url_for("payments.payment_methods"))


@bp.post("/payment-methods/<string:payment_method_id>/remove")
def remove_card(payment_method_id: str) -> Response:
    """Remove a saved card at Stripe; never the card a plan still charges."""
    _students_only()
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        card = next((c for c in _saved_cards() if c.id == payment_method_id), None)
        if card is None:
            abort(404)
        running = _running_plans()
        charged = _charged_cards(running)
        users = [plan for plan in running if charged.get(plan.id) == card.id]
        if users:
            flash(f"{card.label} pays your plan for “{users[0].contract.title}”. Choose another "
                  "card for that plan first, then remove this one.", "warning")
        else:
            stripe_api.detach_payment_method(card.id)
            flash(f"{card.label} was removed.", "success")
    except PaymentProviderError as exc:
        flash(str(exc), "danger")
    return redirect(url_for("payments.payment_methods"))


@bp.post("/payment-methods/add")
def add_card() -> Response:
    """Save a new card through Checkout's setup page (nothing is charged)."""
    _students_only()
    if not ConfirmForm().validate_on_submit():
        abort(400)
    customer_id = checkout.customer_of(current_user)
    if customer_id is None:
        flash("Your first card is saved when you pay a contract by a payment plan.", "info")
        return redirect(url_for("payments.payment_methods"))
    running = _running_plans()
    try:
        session = _start_card_setup(
            customer_id, running[0].contract.currency if running else SETUP_CURRENCY
        )
    except PaymentProviderError as exc:
        flash(str(exc), "danger")
        return redirect(url_for("payments.payment_methods"))
    return redirect(session.url or url_for("payments.payment_methods"), code=303)


def _start_card_setup(customer_id: str, currency: str) -> Any:
    """A Checkout session in setup mode for the student's customer; one a minute per student
    (a double click gets the same session back)."""
    return stripe_api.create_checkout_session(
        {
            "mode": "setup",
            "customer": customer_id,
            "currency": currency,
            "success_url": url_for("payments.payment_methods", _external=True)
            + "?session_id={CHECKOUT_SESSION_ID}",
            "cancel_url": url_for("payments.payment_methods", _external=True),
            "metadata": {"purpose": "card", "user_id": str(current_user.id)},
        },
        stripe_api.idempotency_key(
            "setup", current_user.id, int(clock.now().timestamp()) // 60
        ),
    )


def _card_added(session_id: str) -> None:
    """The student is back from the setup page: say what happened; with one active plan, the
    new card becomes the plan's (commits). Nothing is written when Stripe does not answer."""
    try:
        session = stripe_api.retrieve_checkout_session(session_id)
        found = session.to_dict() if session is not None else {}
        metadata = found.get("metadata") or {}
        if (
            found.get("mode") != "setup"
            or metadata.get("purpose") != "card"
            or metadata.get("user_id") != str(current_user.id)
        ):
            flash("We found no card being added for you.", "warning")
            return
        setup = found.get("setup_intent")
        setup_id = setup.get("id") if isinstance(setup, dict) else setup
        intent = stripe_api.retrieve_setup_intent(setup_id) if setup_id else None
        method = intent.payment_method if intent is not None else None
        method_id = method if isinstance(method, str) else getattr(method, "id", None)
        if found.get("status") != "complete" or intent is None or intent.status != "succeeded" \
                or not method_id:
            flash("The card was not saved; nothing changed.", "warning")
            return
        card = next((c for c in _saved_cards() if c.id == method_id), None)
        label = card.label if card else "Your card"
        active = [p for p in _running_plans() if p.status is PlanStatus.ACTIVE]
        if len(active) == 1 and active[0].payment_method_id != method_id:
            plan = plans.use_card(active[0].id, method_id, current_user)
            db.session.commit()
            flash(f"{label} is saved. Your plan for “{plan.contract.title}” now charges it.",
                  "success")
        else:
            flash(f"{label} is saved.", "success")
    except (PaymentProviderError, plans.PlanRefused) as exc:
        db.session.rollback()
        flash(str(exc), "danger")
