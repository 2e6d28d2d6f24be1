"""A plan's terms and rows: which plans a contract allows, and the bookkeeping of its
schedule when its deposit arrives and when an instalment is paid.

Part of the money core: `payments.settle` starts and advances plans through
these functions; charging instalments (`payments.plans`) sits above it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from flask import current_app
from sqlalchemy import select

import clock
from accounts.models import User
from audit.services import record as audit
from contracts.models import Contract
from contracts.plans import (
    PlanOption,
    PlanRules,
    allowed_plans,
    plan_refusal,
    schedule,
)
from database.states import check_transition
from extensions import db
from payments.models import (
    INSTALMENT_TRANSITIONS,
    PLAN_TRANSITIONS,
    Instalment,
    InstalmentStatus,
    Payment,
    PaymentPlan,
    PlanStatus,
)

# Instalments are charged at this UTC time of their due day.
CHARGE_AT = time(9, 0)


class PlanRefused(Exception):
    """An admin's change a plan cannot take now; the message says why."""


def rules() -> PlanRules:
    config = current_app.config
    return PlanRules(
        minimum_total=config["PLAN_MINIMUM_TOTAL"],
        max_instalments=int(config["PLAN_MAX_INSTALMENTS"]),
    )


# --- choosing a plan ---------------------------------------------------------------


def options(contract: Contract, today: date | None = None) -> list[PlanOption]:
    """The plans this contract may be paid by (none when the coach offers none)."""
    return allowed_plans(contract, contract.total_amount, rules(),
                         today or clock.now().date())


def refusal(contract: Contract, instalments: int) -> str | None:
    """Why this contract cannot be paid by `instalments` instalments, or None."""
    if contract.plan_max_instalments and instalments > contract.plan_max_instalments:
        return f"The coach offers at most {contract.plan_max_instalments} instalments."
    return plan_refusal(contract.total_amount, contract.currency,
                        contract.plan_deposit_percent, instalments, rules(),
                        contract.plan_minimum_total)


def deposit_of(contract: Contract, instalments: int) -> int:
    """The deposit of the plan with `instalments` instalments (the first charge)."""
    assert contract.plan_deposit_percent is not None
    return schedule(contract.total_amount, contract.plan_deposit_percent, instalments,
                    date(2000, 1, 1))[0].amount


def plan_of(contract_id: int) -> PaymentPlan | None:
    return db.session.scalar(select(PaymentPlan).where(PaymentPlan.contract_id == contract_id))


def charge_instant(day: date) -> datetime:
    return datetime.combine(day, CHARGE_AT, tzinfo=UTC)


# --- the deposit: the plan starts -------------------------------------------------


def start_plan(contract: Contract, payment: Payment, instalments: int, *,
               actor: User | None = None) -> PaymentPlan:
    """The deposit arrived: write the plan and its schedule, dated from today. Flushes.

    The caller holds the contract's lock and marks the contract paid with the
    deposit's amount. The card saved at Checkout is found when first needed.
    """
    assert contract.plan_deposit_percent is not None
    paid_on = (payment.paid_at or clock.now()).date()
    plan = PaymentPlan(
        contract_id=contract.id,
        deposit_percent=contract.plan_deposit_percent,
        instalment_count=instalments,
        customer_id=payment.customer_id,
    )
    db.session.add(plan)
    db.session.flush()
    for charge in schedule(contract.total_amount, contract.plan_deposit_percent, instalments,
                           paid_on):
        row = Instalment(plan_id=plan.id, number=charge.number, amount=charge.amount,
                         due_on=charge.due_on, next_attempt_at=charge_instant(charge.due_on))
        if charge.number == 0:
            row.status, row.paid_at, row.attempts = InstalmentStatus.PAID, payment.paid_at, 1
        db.session.add(row)
    db.session.flush()
    payment.instalment_id = plan.instalments[0].id
    contract.plan_instalments = instalments
    audit("plan.started", plan, actor=actor, actor_label=None if actor else "stripe",
          after={"instalments": instalments, "deposit": payment.amount,
                 "contract_id": contract.id})
    return plan


def move_instalment_to(instalment: Instalment, status: InstalmentStatus) -> None:
    """The one way an instalment changes status: refused unless the table lists it."""
    instalment.status = check_transition(INSTALMENT_TRANSITIONS, instalment.status, status,
                                         "instalment")


def instalment_paid(instalment: Instalment, payment: Payment, *, actor: User | None = None,
                    actor_label: str | None = None) -> None:
    """The money of an instalment arrived (by card, Checkout or an admin's record): the
    instalment is paid, and the plan completed with its last one. Flushes; `settle`
    counts the payment for the contract."""
    plan = instalment.plan
    move_instalment_to(instalment, InstalmentStatus.PAID)
    instalment.paid_at = payment.paid_at
    instalment.needs_authentication = False
    instalment.last_error = None
    payment.instalment_id = instalment.id
    db.session.flush()
    audit("instalment.paid", instalment, actor=actor, actor_label=actor_label,
          after={"amount": instalment.amount, "payment_id": payment.id})
    if all(i.status is InstalmentStatus.PAID for i in plan.instalments):
        plan.status = check_transition(PLAN_TRANSITIONS, plan.status, PlanStatus.COMPLETED,
                                       "plan")
        audit("plan.completed", plan, actor_label="system")


def close_plan(contract: Contract, *, reason: str, actor: User | None = None) -> None:
    """The contract ended (refunded in full, cancelled): its plan charges nothing more.
    Flushes; nothing when it has no open plan."""
    plan = plan_of(contract.id)
    if plan is None or plan.status not in (PlanStatus.ACTIVE, PlanStatus.PAUSED):
        return
    plan.status = check_transition(PLAN_TRANSITIONS, plan.status, PlanStatus.CANCELLED, "plan")
    for instalment in plan.instalments:
        if instalment.status is not InstalmentStatus.PAID and (
            InstalmentStatus.CANCELLED in INSTALMENT_TRANSITIONS.get(instalment.status, ())
        ):
            move_instalment_to(instalment, InstalmentStatus.CANCELLED)
    audit("plan.cancelled", plan, actor=actor, actor_label=None if actor else "system",
          after={"reason": reason})
