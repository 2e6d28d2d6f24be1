"""Admin: payment plans. The plans by status, what is due soon and what is failing, and an
admin's hand on one plan (pause, resume, move or record an instalment, cancel).

The changes are the service's (`payments.plans`): each action calls it once, commits
once, and says what happened in a flash; a change the plan cannot take now is refused
with the service's message and nothing is written. The actions' forms are on the
contract's page ("Payment plan", `admin.people_views.render_contract`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload, selectinload
from werkzeug.wrappers import Response

import clock
from admin import confirm, restate
from admin.forms import CancelPlanForm, MoveInstalmentForm, OfflineInstalmentForm, PlanActionForm
from admin.listing import Page, int_arg, keyset_page, query_args
from admin.refund_views import send_and_tell
from admin.views import bp
from contracts.models import Contract, ContractStatus
from contracts.money import format_money
from database.states import TransitionError
from extensions import db
from payments import plans, refunds
from payments.models import Instalment, InstalmentStatus, PaymentPlan, PlanStatus

# What the list can show: a plan's own status, or its contract past due.
PAST_DUE = "past_due"
FILTERS = {
    "active": "Active",
    "paused": "Paused",
    "completed": "Completed",
    "cancelled": "Cancelled",
    PAST_DUE: "Past due",
}
DUE_SOON_DAYS = 7
DUE_SOON_SHOWN = 200
UNPAID = (InstalmentStatus.SCHEDULED, InstalmentStatus.FAILED)
# Plans whose instalments are still to be charged.
RUNNING = (PlanStatus.ACTIVE, PlanStatus.PAUSED)


# --- reading --------------------------------------------------------------------------------


def is_failing(instalment: Instalment) -> bool:
    """An unpaid instalment whose charge went wrong: failed for good, waiting for the
    student's authentication, or declined (or not reached) and waiting for a retry."""
    if instalment.status is InstalmentStatus.FAILED:
        return True
    return instalment.status is InstalmentStatus.SCHEDULED and bool(
        instalment.needs_authentication or instalment.last_error
    )


def next_instalment(plan: PaymentPlan) -> Instalment | None:
    """The first instalment not paid yet (scheduled, being charged or failed)."""
    return next(
        (
            i
            for i in plan.instalments
            if i.status not in (InstalmentStatus.PAID, InstalmentStatus.CANCELLED)
        ),
        None,
    )


def failing_instalments(plan: PaymentPlan) -> list[Instalment]:
    return [i for i in plan.instalments if is_failing(i)]


@dataclass(frozen=True)
class PlanFilters:
    status: str | None = None  # a key of FILTERS

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> PlanFilters:
        status = (args.get("status") or "").strip()
        return cls(status=status if status in FILTERS else None)

    def as_args(self) -> dict[str, str]:
        return query_args(status=self.status)


def plan_page(filters: PlanFilters, after: int | None) -> Page[PaymentPlan]:
    """One page of plans, newest first, each with its contract, student and instalments."""
    query = (
        select(PaymentPlan)
        .join(Contract, Contract.id == PaymentPlan.contract_id)
        .options(
            joinedload(PaymentPlan.contract).joinedload(Contract.student),
            selectinload(PaymentPlan.instalments),
        )
    )
    if filters.status == PAST_DUE:
        query = query.where(Contract.status == ContractStatus.PAST_DUE)
    elif filters.status is not None:
        query = query.where(PaymentPlan.status == PlanStatus(filters.status))
    return keyset_page(query, PaymentPlan.id, after)


def plan_counts() -> dict[str, int]:
    """How many plans each filter shows (one statement)."""
    rows = db.session.execute(
        select(PaymentPlan.status, Contract.status, func.count())
        .join(Contract, Contract.id == PaymentPlan.contract_id)
        .group_by(PaymentPlan.status, Contract.status)
    )
    counts = dict.fromkeys(FILTERS, 0)
    counts["all"] = 0
    for plan_status, contract_status, count in rows:
        counts[plan_status.value] += count
        counts["all"] += count
        if contract_status is ContractStatus.PAST_DUE:
            counts[PAST_DUE] += count
    return counts


def due_soon(today: date, days: int = DUE_SOON_DAYS) -> list[Instalment]:
    """Unpaid instalments of running plans due from today to `days` days on, soonest first."""
    return list(
        db.session.scalars(
            select(Instalment)
            .join(PaymentPlan, PaymentPlan.id == Instalment.plan_id)
            .options(
                joinedload(Instalment.plan)
                .joinedload(PaymentPlan.contract)
                .joinedload(Contract.student)
            )
            .where(
                Instalment.status == InstalmentStatus.SCHEDULED,
                Instalment.number > 0,
                Instalment.due_on >= today,
                Instalment.due_on <= today + timedelta(days=days),
                PaymentPlan.status.in_(RUNNING),
            )
            .order_by(Instalment.due_on, Instalment.id)
            .limit(DUE_SOON_SHOWN)
        )
    )


@dataclass(frozen=True)
class PlansAttention:
    """The dashboard's tile: plans whose contract is past due, and instalments failing."""

    past_due: int
    failing: int


def attention() -> PlansAttention:
    past_due = db.session.scalar(
        select(func.count())
        .select_from(PaymentPlan)
        .join(Contract, Contract.id == PaymentPlan.contract_id)
        .where(Contract.status == ContractStatus.PAST_DUE, PaymentPlan.status.in_(RUNNING))
    )
    failing = db.session.scalar(
        select(func.count())
        .select_from(Instalment)
        .join(PaymentPlan, PaymentPlan.id == Instalment.plan_id)
        .where(
            PaymentPlan.status.in_(RUNNING),
            (Instalment.status == InstalmentStatus.FAILED)
            | (
                (Instalment.status == InstalmentStatus.SCHEDULED)
                & (Instalment.needs_authentication.is_(True) | Instalment.last_error.is_not(None))
            ),
        )
    )
    return PlansAttention(past_due=int(past_due or 0), failing=int(failing or 0))


@bp.get("/plans")
def plans_page() -> str:
    filters = PlanFilters.from_args(request.args)
    after = int_arg(request.args, "after")
    today = clock.now().date()
    return render_template(
        "admin/plans.html",
        section="plans",
        filters=filters,
        filter_labels=FILTERS,
        counts=plan_counts(),
        page=plan_page(filters, after),
        after=after,
        due=due_soon(today),
        due_days=DUE_SOON_DAYS,
        today=today,
        due_until=today + timedelta(days=DUE_SOON_DAYS),
        next_instalment=next_instalment,
        failing_instalments=failing_instalments,
    )


# --- an admin's hand on one plan --------------------------------------------------------
# Every action is under its contract (a contract has at most one plan); an instalment's
# actions name it in a hidden field, as the refund forms name their request.


REFUSALS = (plans.PlanRefused, TransitionError, refunds.RefundRefused)


def _back_to(contract_id: int) -> Response:
    return redirect(
        url_for("admin.contract_detail", contract_id=contract_id, _anchor="payment-plan")
    )


def _form_refused(form: FlaskForm) -> None:
    for errors in form.errors.values():
        for error in errors:
            flash(error, "warning")


def _plan_or_404(contract_id: int) -> PaymentPlan:
    plan = plans.plan_of(db.get_or_404(Contract, contract_id).id)
    if plan is None:
        abort(404)
    return plan


def _instalment_or_404(plan: PaymentPlan, instalment_id: int | None) -> Instalment:
    found = next((i for i in plan.instalments if i.id == instalment_id), None)
    if found is None:
        abort(404)
    return found


def _refused(exc: Exception, contract_id: int) -> Response:
    """The service said no: nothing it did is kept, and the admin reads why."""
    db.session.rollback()
    flash(str(exc), "warning")
    return _back_to(contract_id)


@bp.post("/contracts/<int:contract_id>/plan/pause")
def plan_pause(contract_id: int) -> Response:
    plan = _plan_or_404(contract_id)
    form = PlanActionForm()
    if not form.validate_on_submit():
        _form_refused(form)
        return _back_to(contract_id)
    try:
        plans.pause(plan.id, current_user)
        db.session.commit()
    except REFUSALS as exc:
        return _refused(exc, contract_id)
    flash("The plan is paused: no instalment is charged until it is resumed.", "success")
    return _back_to(contract_id)


@bp.post("/contracts/<int:contract_id>/plan/resume")
def plan_resume(contract_id: int) -> Response:
    plan = _plan_or_404(contract_id)
    form = PlanActionForm()
    if not form.validate_on_submit():
        _form_refused(form)
        return _back_to(contract_id)
    before = {i.id: i.due_on for i in plan.instalments if i.status in UNPAID}
    try:
        resumed = plans.resume(plan.id, current_user)
        shifted = max(
            ((i.due_on - before[i.id]).days for i in resumed.instalments if i.id in before),
            default=0,
        )
        db.session.commit()
    except REFUSALS as exc:
        return _refused(exc, contract_id)
    if shifted:
        days = f"{shifted} day{'' if shifted == 1 else 's'}"
        flash(f"The plan is resumed; its unpaid instalments moved on by {days}.", "success")
    else:
        flash("The plan is resumed; its dates stay as they were.", "success")
    return _back_to(contract_id)


@bp.post("/contracts/<int:contract_id>/plan/move")
def plan_move_instalment(contract_id: int) -> Response:
    plan = _plan_or_404(contract_id)
    form = MoveInstalmentForm()
    instalment = _instalment_or_404(plan, form.instalment_id.data)
    if not form.validate_on_submit():
        _form_refused(form)
        return _back_to(contract_id)
    try:
        assert form.due_on.data is not None  # required
        moved = plans.move_instalment(instalment.id, current_user, form.due_on.data)
        number, due_on = moved.number, moved.due_on
        db.session.commit()
    except REFUSALS as exc:
        return _refused(exc, contract_id)
    flash(f"Instalment {number} is now due on {due_on:%d %b %Y}.", "success")
    return _back_to(contract_id)


@bp.post("/contracts/<int:contract_id>/plan/record-payment")
def plan_record_instalment(contract_id: int) -> str | Response:
    plan = _plan_or_404(contract_id)
    form = OfflineInstalmentForm()
    instalment = _instalment_or_404(plan, form.instalment_id.data)
    if not form.validate_on_submit():
        _form_refused(form)
        return _back_to(contract_id)
    reference = form.reference.data or ""
    refused = plans.manual_instalment_refusal(instalment, clock.now().date())
    if refused:
        flash(refused, "warning")
        return _back_to(contract_id)
    page = confirm.ask(restate.offline_instalment(instalment, reference, current_user))
    if page is not None:
        return page
    try:
        payment = plans.record_manual_instalment(
            instalment.id, current_user, reference=reference, note=form.note.data or ""
        )
        number = instalment.number
        amount = format_money(payment.amount, payment.currency)
        db.session.commit()
    except REFUSALS as exc:
        return _refused(exc, contract_id)
    flash(f"Instalment {number} ({amount}) recorded as paid offline.", "success")
    return _back_to(contract_id)


@bp.post("/contracts/<int:contract_id>/plan/cancel")
def plan_cancel(contract_id: int) -> str | Response:
    plan = _plan_or_404(contract_id)
    form = CancelPlanForm()
    if not form.validate_on_submit():
        _form_refused(form)
        return _back_to(contract_id)
    reason, contract = form.reason.data or "", plan.contract
    money = refunds.refundable(contract)
    quote = refunds.quote_now(contract, money)
    refused = plans.cancel_plan_refusal(plan, money, quote.amount)
    if refused:
        flash(refused, "warning")
        return _back_to(contract_id)
    page = confirm.ask(restate.cancel_with_refund(contract, quote, money, reason, plan=True))
    if page is not None:
        return page
    try:
        refund = plans.cancel_plan(plan.id, current_user, reason=reason, quoted=quote.amount)
        refund_id = refund.id if refund is not None else None
        db.session.commit()
    except REFUSALS as exc:
        return _refused(exc, contract_id)
    flash(
        "The plan is cancelled, with its unpaid instalments, and so is the contract; "
        "both parties were told.",
        "success",
    )
    if refund_id is None:
        flash("Its refund policy gives nothing back now, so no refund was made.", "info")
    else:
        send_and_tell(refund_id)
    return _back_to(contract_id)
