"""An admin's hand on a plan: pause and resume, move an instalment, record one paid
offline, cancel the plan (the contract is cancelled with its policy's refund)."""

from __future__ import annotations

from datetime import date, timedelta

import clock
from accounts.models import User
from audit.services import record as audit
from database.states import check_transition, refusal
from extensions import db
from payments.models import (
    PLAN_TRANSITIONS,
    Instalment,
    InstalmentStatus,
    ManualMethod,
    Payment,
    PaymentPlan,
    PaymentRecordStatus,
    PlanStatus,
    Refund,
)
from payments.plan_terms import (
    PlanRefused,
    charge_instant,
    move_instalment_to,
)
from payments.plans.charges import locked_instalment
from payments.records import (
    lock_with_contract,
)
from payments.refunds import cancel_active_contract, cancel_refusal
from payments.settle import settle
from payments.standing import Standing


def pause(plan_id: int, admin: User) -> PaymentPlan:
    """No charge while paused; resuming moves the unpaid dates on by the pause. Flushes."""
    plan, _ = lock_with_contract(PaymentPlan, plan_id)
    plan.status = check_transition(PLAN_TRANSITIONS, plan.status, PlanStatus.PAUSED, "plan")
    plan.paused_at = clock.now()
    audit("plan.paused", plan, actor=admin)
    return plan


def resume(plan_id: int, admin: User) -> PaymentPlan:
    """Resume a paused plan; every unpaid instalment moves on by the whole days paused."""
    plan, _ = lock_with_contract(PaymentPlan, plan_id)
    plan.status = check_transition(PLAN_TRANSITIONS, plan.status, PlanStatus.ACTIVE, "plan")
    assert plan.paused_at is not None
    shift = timedelta(days=(clock.now() - plan.paused_at).days)  # whole 24-hour days
    for instalment in plan.instalments:
        if instalment.status is InstalmentStatus.SCHEDULED and shift:
            instalment.due_on += shift
            instalment.next_attempt_at += shift
    plan.paused_at = None
    audit("plan.resumed", plan, actor=admin, after={"shifted_days": shift.days})
    return plan


def move_instalment(instalment_id: int, admin: User, due_on: date) -> Instalment:
    """Move one unpaid instalment to another day (today or later). Flushes."""
    instalment, _, _ = locked_instalment(instalment_id)
    if instalment.status not in (InstalmentStatus.SCHEDULED, InstalmentStatus.FAILED):
        raise PlanRefused(f"This instalment is {instalment.status.value}; it cannot move.")
    if due_on < clock.now().date():
        raise PlanRefused("An instalment cannot move into the past.")
    before = instalment.due_on
    if instalment.status is InstalmentStatus.FAILED:
        # A new date is a new start: charged on it, with its own retries.
        move_instalment_to(instalment, InstalmentStatus.SCHEDULED)
        instalment.attempts = 0
    instalment.due_on = due_on
    instalment.next_attempt_at = charge_instant(due_on)
    audit("instalment.moved", instalment, actor=admin,
          before={"due_on": before.isoformat()}, after={"due_on": due_on.isoformat()})
    return instalment


def manual_instalment_refusal(instalment: Instalment, received_on: date) -> str | None:
    """Why this instalment cannot be recorded as paid offline now, or None."""
    if instalment.status not in (InstalmentStatus.SCHEDULED, InstalmentStatus.FAILED):
        return f"This instalment is {instalment.status.value}; nothing to record."
    if received_on > clock.now().date():
        return "The money cannot have been received in the future."
    return None


def record_manual_instalment(
    instalment_id: int,
    admin: User,
    *,
    reference: str,
    note: str = "",
    method: ManualMethod = ManualMethod.BANK_TRANSFER,
    received_on: date | None = None,
) -> Payment:
    """An instalment paid offline, recorded by an admin: as final as a card payment."""
    instalment, plan, contract = locked_instalment(instalment_id)
    received_on = received_on or clock.now().date()
    why_not = manual_instalment_refusal(instalment, received_on)
    if why_not:
        raise PlanRefused(why_not)
    payment = Payment(contract_id=contract.id, amount=instalment.amount,
                      currency=contract.currency, status=PaymentRecordStatus.PENDING,
                      manual_method=method, manual_reference=reference.strip(),
                      received_on=received_on, note=note.strip() or None,
                      recorded_by_id=admin.id, instalment_id=instalment.id)
    db.session.add(payment)
    db.session.flush()
    audit("payment.manual_recorded", payment, actor=admin,
          after={"instalment": instalment.number, "amount": payment.amount})
    settle(payment, contract, actor=admin, details={"method": "manual"})
    return payment


def cancel_plan_refusal(plan: PaymentPlan, money: Standing, amount: int) -> str | None:
    """Why `plan` cannot be cancelled now with a refund of `amount`, or None."""
    if PlanStatus.CANCELLED not in PLAN_TRANSITIONS.get(plan.status, frozenset()):
        return refusal(plan.status, PlanStatus.CANCELLED, "plan")
    return cancel_refusal(plan.contract, money, amount)


def cancel_plan(
    plan_id: int, admin: User, *, reason: str, quoted: int | None = None
) -> Refund | None:
    """End a plan: the contract is cancelled with the refund its policy gives for what was
    paid (`payments.refunds`), which closes the plan and cancels every unpaid instalment
    (a charge still on its way that succeeds later goes back in full). `quoted` is the
    refund the admin confirmed (another is refused). Flushes; the refund, if any."""
    plan, contract = lock_with_contract(PaymentPlan, plan_id)
    check_transition(PLAN_TRANSITIONS, plan.status, PlanStatus.CANCELLED, "plan")
    return cancel_active_contract(contract.id, admin, reason=reason, quoted=quoted)
