"""Paying a contract: the Checkout session, and the student's return from it.

Claim, commit, then ask Stripe: the attempt is written under the contract's lock
(a payment record with its amount, metadata and attempt number, no session yet)
and committed, so the lock is released before Stripe is asked for the session
with an idempotency key from that attempt; the session is then recorded on the
claim. A double click, or a retry after Stripe was not reached, finds the same
claim and gets the same session from Stripe.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from flask import current_app, url_for
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

import clock
from accounts.models import User
from audit.services import record as audit
from contracts.models import Contract, ContractStatus, PaymentStatus
from contracts.services import lock_contract
from errors import NotFound
from extensions import db
from payments import plans, stripe_api
from payments.checkout.fulfil import fulfil_checkout
from payments.models import InstalmentStatus, Payment, PaymentRecordStatus, StripeCustomer
from payments.records import lock_with_contract, payment_by, payments_of, transfer_group
from payments.stripe_api import PaymentProviderError
from scheduling import holds
from scheduling.availability import slot_value

# An open Checkout session is reused only while it has this long left to live.
REUSE_MARGIN = timedelta(minutes=10)
CHECKOUT_LIFETIME = timedelta(hours=2)
MIN_CHECKOUT_LIFETIME = timedelta(minutes=35)  # Stripe: at least 30 minutes ahead
# A session paying for a held first session lives as briefly as Stripe allows (30 minutes,
# with the margin above): the time is kept from others no longer than it can be paid for.
HELD_CHECKOUT_LIFETIME = MIN_CHECKOUT_LIFETIME
# A held claim's expiry is sent again only while Stripe would still take it: 30 minutes
# ahead, with a minute for the way there.
HELD_SOONEST = timedelta(minutes=31)
ON_ITS_WAY = (
    "A payment for this contract is on its way (a bank debit takes a few days); "
    "nothing more to pay now."
)


def manual_only() -> bool:
    """Whether Coachpact runs without Stripe (PAYMENTS_MODE=manual): admins record payments."""
    return current_app.config["PAYMENTS_MODE"] == "manual"


class NotPayable(Exception):
    """The contract cannot be paid now (already paid, cancelled, ...); message for the user."""


class SlotTaken(NotPayable):
    """The first session's time picked cannot be held (taken, or not a free time): nothing
    was written or charged; message for the pay page."""


def checkout_expiry(claim_made: datetime, moment: datetime, *, held: bool) -> datetime:
    """When a claim's Checkout session expires, whole seconds as Stripe keeps it.

    From the claim, not the request: the same claim asks Stripe with the same key, so
    with the same parameters (a double click's two requests would differ, and Stripe
    refuses a key reused with other parameters). A claim retried too late for that expiry
    (Stripe wants 30 minutes at least) gets a new one. A held time's session lives
    `HELD_CHECKOUT_LIFETIME`, any other `CHECKOUT_LIFETIME`.
    """
    lifetime = HELD_CHECKOUT_LIFETIME if held else CHECKOUT_LIFETIME
    expires = claim_made + lifetime
    if expires < moment + (HELD_SOONEST if held else MIN_CHECKOUT_LIFETIME):
        expires = moment + lifetime
    return datetime.fromtimestamp(int(expires.timestamp()), UTC)


def contract_for_student(contract_id: int, student: User, *, lock: bool = False) -> Contract:
    """The contract if `student` is its student; to anyone else it does not exist (404)."""
    contract = lock_contract(contract_id) if lock else db.session.get(Contract, contract_id)
    if contract is None or contract.student_id != student.id:
        raise NotFound()
    return contract


def customer_of(student: User) -> str | None:
    """The student's Stripe customer id, or None when they never paid through Stripe."""
    return db.session.scalar(
        select(StripeCustomer.customer_id).filter_by(user_id=student.id))


def ensure_customer(student: User) -> str:
    """The student's Stripe customer, made once. Two requests at once (a double click) both
    ask Stripe with the same idempotency key, so they get the same customer; the second to
    record it finds the first's row."""
    known = customer_of(student)
    if known is not None:
        return known
    customer = stripe_api.create_customer(
        {"email": student.email, "name": student.name, "metadata": {"user_id": str(student.id)}},
        stripe_api.idempotency_key("customer", student.id, int(student.created_at.timestamp())),
    )
    try:
        with db.session.begin_nested():
            db.session.add(StripeCustomer(user_id=student.id, customer_id=customer.id))
    except IntegrityError:
        pass  # recorded by the other request meanwhile: the same customer
    return customer.id


def _reusable(attempts: list[Payment], moment: datetime, *, held: bool = False) -> Payment | None:
    for payment in attempts:
        if (
            payment.status in (PaymentRecordStatus.PENDING, PaymentRecordStatus.FAILED)
            and payment.checkout_url
            and payment.expires_at
            and payment.expires_at > moment + REUSE_MARGIN
        ):
            if held:
                hold = holds.hold_of_payment(payment.id)
                if hold is None or not hold.is_live(moment):
                    continue  # its time was given up: a new session holds it again
            return payment
    return None


def _expire_sessions(payment_ids: Iterable[int]) -> None:
    """Expire at Stripe the open sessions of attempts whose held time was given up (a
    time picked instead, a payment without one), so they can no longer be paid. Called
    with no lock held. A refusal is logged only: a session paid meanwhile settles as
    any payment does, and its time is booked if still free (`holds.book_paid_hold`)."""
    for payment_id in payment_ids:
        session_id = db.session.scalar(
            select(Payment.checkout_session_id).where(Payment.id == payment_id)
        )
        if session_id is None:
            continue
        try:
            stripe_api.expire_checkout_session(session_id)
        except PaymentProviderError as exc:
            current_app.logger.warning("Checkout session %s not expired: %s", session_id, exc)


def start_checkout(
    contract_id: int,
    student: User,
    *,
    instalments: int | None = None,
    first_session: datetime | None = None,
) -> str:
    """The Checkout URL for paying this contract: an open session reused, or a new one.

    The price comes from the contract alone: its total, or with `instalments` the
    deposit of that plan (`payments.plans`), with the card saved for the
    instalments (`setup_future_usage=off_session`). Commits the attempt before
    Stripe is asked (see the module's docstring).

    With `first_session`, that time is held for the attempt (`scheduling.holds`) while
    its session can be paid, and booked when it is; a time that cannot be held raises
    SlotTaken with nothing written. Any other time the contract held is given up, its
    session expired at Stripe.
    """
    if manual_only():
        raise NotPayable(current_app.config["PAYMENT_INSTRUCTIONS"])
    contract = contract_for_student(contract_id, student, lock=True)
    if instalments is not None:
        why_not = plans.refusal(contract, instalments)
        if why_not:
            raise NotPayable(why_not)
    if contract.payment_status is PaymentStatus.PAID or contract.paid_at is not None:
        raise NotPayable("This contract is already paid.")
    if contract.status is not ContractStatus.PENDING:
        raise NotPayable(f"This contract is {contract.status.value}; it cannot be paid.")
    attempts = payments_of(contract)
    if any(payment.status is PaymentRecordStatus.PROCESSING for payment in attempts):
        # The debit settles in days; a second session now would charge the student twice.
        raise NotPayable(ON_ITS_WAY)
    plan_choice = str(instalments or "")
    slot_choice = slot_value(first_session) if first_session else ""
    mine = [p for p in attempts if p.stripe_metadata.get("plan_instalments", "") == plan_choice
            and p.stripe_metadata.get("first_session", "") == slot_choice
            and p.instalment_id is None]
    moment = clock.now()
    reusable = _reusable(mine, moment, held=first_session is not None)
    if reusable is not None:
        given_up = holds.release_others(contract, reusable.id, "replaced")
        if given_up:
            db.session.commit()  # the lock is let go before Stripe is asked
            _expire_sessions(given_up)
        return reusable.checkout_url or ""
    product = f"{contract.title} — {contract.minutes_per_session}-minute coaching session"
    line = {"quantity": contract.session_count, "unit_amount": contract.price_per_session}
    intent_data: stripe_api.CheckoutIntentData = {"transfer_group": transfer_group(contract.id)}
    expected, extra = contract.total_amount, {}
    if instalments is not None:
        expected = plans.deposit_of(contract, instalments)
        extra = {"plan_instalments": plan_choice}
        product = (
            f"{contract.title}: deposit ({contract.plan_deposit_percent} %), then "
            f"{instalments} monthly instalments"
        )
        line = {"quantity": 1, "unit_amount": expected}
        intent_data["setup_future_usage"] = "off_session"
    if first_session is not None:
        extra["first_session"] = slot_choice
    claim = _claim(contract, mine, len(attempts), expected, extra)
    if first_session is not None:
        try:
            holds.hold_slot(contract, claim.id, first_session,
                            checkout_expiry(claim.created_at, moment, held=True))
        except holds.SchedulingError as exc:
            raise SlotTaken(str(exc)) from None
    given_up = holds.release_others(
        contract, claim.id if first_session is not None else None, "replaced"
    )
    # The group the coach's transfers for this contract join (`payouts`).
    intent_data["metadata"] = claim.stripe_metadata
    params = {
        "mode": "payment",
        "client_reference_id": str(contract.id),
        "line_items": [
            {
                "quantity": line["quantity"],
                "price_data": {
                    "currency": contract.currency,
                    "unit_amount": line["unit_amount"],
                    "product_data": {"name": product},
                },
            }
        ],
        "metadata": claim.stripe_metadata,
        "payment_intent_data": intent_data,
        "success_url": url_for("payments.success", contract_id=contract.id, _external=True)
        + "?session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": url_for("payments.cancel", contract_id=contract.id, _external=True),
    }
    key = stripe_api.idempotency_key(
        "checkout", contract.id, int(contract.created_at.timestamp()),
        claim.stripe_metadata["attempt"],
    )
    return _open_session(claim.id, student, params, key, held=first_session is not None,
                         expire_first=given_up)


def _claim(contract: Contract, mine: list[Payment], made: int, amount: int,
           extra: dict[str, str], instalment_id: int | None = None) -> Payment:
    """The attempt this request pays through, under the contract's lock: a claim left by
    an earlier request that did not reach Stripe (same attempt, same key), or a new one."""
    for payment in mine:
        if payment.checkout_session_id is None and payment.status is PaymentRecordStatus.PENDING:
            return payment
    attempt = f"checkout-{made + 1}" if instalment_id else str(made + 1)
    claim = Payment(
        contract_id=contract.id,
        amount=amount,
        currency=contract.currency,
        instalment_id=instalment_id,
        stripe_metadata={"contract_id": str(contract.id), **extra, "attempt": attempt},
    )
    db.session.add(claim)
    db.session.flush()
    return claim


def _open_session(claim_id: int, student: User, params: dict, key: str, *,
                  held: bool = False, expire_first: Iterable[int] = ()) -> str:
    """Ask Stripe for the claim's session, outside any lock; record it on the claim.

    Commits the claim first (ending the contract's lock), then expires the sessions of
    the attempts in `expire_first` (their held time given up). A held claim's hold
    takes the session's expiry. The caller commits the session's record.
    """
    moment = clock.now()
    claim_made = db.session.get(Payment, claim_id).created_at  # type: ignore[union-attr]
    db.session.commit()
    _expire_sessions(expire_first)
    expires = checkout_expiry(claim_made, moment, held=held)
    params = {**params, "customer": ensure_customer(student),
              "expires_at": int(expires.timestamp())}
    db.session.commit()  # the customer, if new: kept even if Stripe refuses what follows
    try:
        session = stripe_api.create_checkout_session(params, key)  # type: ignore[arg-type]
    except PaymentProviderError as exc:
        if held and not exc.unreached:
            # Stripe made nothing and will make nothing for this claim: its time goes back.
            lock_with_contract(Payment, claim_id)
            holds.release_for_payment(claim_id, "refused")
            db.session.commit()
        raise
    claim, _ = lock_with_contract(Payment, claim_id)
    if session.amount_total != claim.amount or session.currency != claim.currency:
        raise NotPayable("The payment provider quoted a different amount. Nothing was charged.")
    if claim.checkout_session_id is None:
        claim.checkout_session_id = session.id
        claim.customer_id = session.customer if isinstance(session.customer, str) else None
        claim.checkout_url = session.url
        claim.expires_at = datetime.fromtimestamp(session.expires_at, moment.tzinfo)
        audit(
            "payment.checkout_started",
            claim,
            actor=student,
            after={"checkout_session_id": session.id, "amount": claim.amount,
                   **({"instalment_id": claim.instalment_id} if claim.instalment_id else {})},
        )
    if held and claim.expires_at is not None:
        holds.set_expiry(claim.id, claim.expires_at)
    return claim.checkout_url or session.url or ""


def release_on_cancel(contract_id: int, student: User) -> holds.SlotHold | None:
    """The student cancelled on Checkout's page: the session their held time lives for is
    expired at Stripe, then the time released at once; the released hold.

    None when the contract holds no time, or Stripe did not expire the session (it was
    paid at that very moment, or Stripe could not be reached): the hold then ends with its
    session, as Stripe reports it. Commits what it reads before asking Stripe.
    """
    contract = contract_for_student(contract_id, student)
    hold = holds.live_hold_of(contract)
    if hold is None:
        return None
    payment_id = hold.payment_id
    session_id = db.session.scalar(
        select(Payment.checkout_session_id).where(Payment.id == payment_id)
    )
    db.session.commit()
    if session_id is not None:
        try:
            stripe_api.expire_checkout_session(session_id)
        except PaymentProviderError:
            try:
                session = stripe_api.retrieve_checkout_session(session_id)
            except PaymentProviderError:
                return None
            if session is None or session.status != "expired":
                return None
    lock_contract(contract.id)
    released = holds.release_for_payment(payment_id, "cancelled")
    if released is None:
        # Stripe's checkout.session.expired, sent as the session expired, came first.
        hold = holds.hold_of_payment(payment_id)
        released = hold if hold and hold.status is holds.HoldStatus.RELEASED else None
    return released


def confirm_return(contract_id: int, student: User, session_id: str) -> Payment | None:
    """The success page: ask Stripe about the session and fulfil it if it is paid.

    The same fulfilment the event pipeline runs, synchronously, so the student
    sees the result at once. A session id that is not one of this contract's
    attempts activates nothing.
    """
    contract = contract_for_student(contract_id, student)
    if payment_by(checkout_session_id=session_id, contract_id=contract.id) is None:
        return None
    session = stripe_api.retrieve_checkout_session(session_id)
    if session is None:
        return None
    fulfil_checkout(session.to_dict(), source="success_page")
    return payment_by(checkout_session_id=session_id)


def start_instalment_checkout(contract_id: int, instalment_id: int, student: User) -> str:
    """The Checkout URL for paying one plan instalment by hand (the bank asked the student
    to authenticate, or it failed): its amount, the card saved again for the next ones."""
    contract = contract_for_student(contract_id, student, lock=True)
    try:
        instalment = plans.instalment_for_student(contract_id, instalment_id, student)
    except LookupError as exc:
        raise NotFound() from exc
    # Only one waiting for the student: any other is charged on its date (twice, if paid here).
    if not (
        instalment.status is InstalmentStatus.FAILED
        or (instalment.status is InstalmentStatus.SCHEDULED and instalment.needs_authentication)
    ):
        raise NotPayable("This instalment is charged to your card on its date; nothing to pay now.")
    attempts = [p for p in payments_of(contract) if p.instalment_id == instalment.id]
    mine = [p for p in attempts if str(p.stripe_metadata.get("attempt", "")).startswith(
        "checkout-")]
    reusable = _reusable([p for p in mine if p.checkout_session_id], clock.now())
    if reusable is not None:
        return reusable.checkout_url or ""
    claim = _claim(contract, mine, len(attempts), instalment.amount,
                   {"instalment_id": str(instalment.id)}, instalment_id=instalment.id)
    params = {
        "mode": "payment",
        "client_reference_id": str(contract.id),
        "line_items": [{"quantity": 1, "price_data": {
            "currency": contract.currency, "unit_amount": instalment.amount,
            "product_data": {"name": f"{contract.title}: instalment {instalment.number} of "
                                     f"{instalment.plan.instalment_count}"}}}],
        "metadata": claim.stripe_metadata,
        "payment_intent_data": {"metadata": claim.stripe_metadata,
                                "setup_future_usage": "off_session",
                                "transfer_group": transfer_group(contract.id)},
        "success_url": url_for("payments.success", contract_id=contract.id, _external=True)
        + "?session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": url_for("contracts.detail", contract_id=contract.id, _external=True),
    }
    key = stripe_api.idempotency_key("checkout-instalment", instalment.id,
                                     claim.stripe_metadata["attempt"].removeprefix("checkout-"))
    return _open_session(claim.id, student, params, key)
