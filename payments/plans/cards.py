"""The student's side of a plan: the cards it may charge, and one instalment to pay by hand.

A plan charges the card chosen (`use_card`), else the one its latest Checkout
payment saved (`payments.plans.charges.card_of`). When the bank asked the student
to authenticate, or an instalment failed, the student pays it through Checkout
(`payments.checkout.start_instalment_checkout` finds it with
`instalment_for_student`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

import clock
from accounts.models import User
from audit.services import record as audit
from extensions import db
from payments import stripe_api
from payments.models import (
    Instalment,
    InstalmentStatus,
    PaymentPlan,
    PlanStatus,
)
from payments.plan_terms import (
    PlanRefused,
)
from payments.records import lock_with_contract


def instalment_for_student(contract_id: int, instalment_id: int, student: User) -> Instalment:
    instalment = db.session.get(Instalment, instalment_id)
    if (
        instalment is None
        or instalment.plan.contract_id != contract_id
        or instalment.plan.contract.student_id != student.id
    ):
        raise LookupError("not this student's instalment")
    return instalment


def saved_cards(student: User) -> list[Any]:
    """The cards saved on the student's Stripe customer (none when they never paid)."""
    from payments.models import StripeCustomer

    customer = db.session.scalar(select(StripeCustomer).filter_by(user_id=student.id))
    if customer is None:
        return []
    return stripe_api.list_card_methods(customer.customer_id)


def use_card(plan_id: int, payment_method_id: str, student: User) -> PaymentPlan:
    """The student chooses which saved card the plan charges. Flushes.

    The card must be one of theirs at Stripe (asked before any lock is taken).
    A card whose instalment waited for authentication is charged again at once.
    """
    known = db.session.get(PaymentPlan, plan_id)
    if known is None or known.contract.student_id != student.id:
        raise LookupError("not this student's plan")
    if known.status not in (PlanStatus.ACTIVE, PlanStatus.PAUSED):
        raise PlanRefused(f"This plan is {known.status.value}; it charges no card any more.")
    if payment_method_id not in {card.id for card in saved_cards(student)}:
        raise PlanRefused("That card is not one of yours.")
    plan, _ = lock_with_contract(PaymentPlan, plan_id)
    before = plan.payment_method_id
    plan.payment_method_id = payment_method_id
    for instalment in plan.instalments:
        if instalment.needs_authentication and instalment.status is InstalmentStatus.SCHEDULED:
            instalment.needs_authentication = False
            instalment.next_attempt_at = min(instalment.next_attempt_at, clock.now())
    audit("plan.card_changed", plan, actor=student, before={"payment_method": before},
          after={"payment_method": payment_method_id})
    return plan
