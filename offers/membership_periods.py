"""A membership's periods: each paid invoice is a contract of its period.

Once `invoice.paid` grants a period its credits, the period becomes a contract like any
other, already paid: its sessions are the credits, booked, moved, cancelled (late ones
used) and marked through scheduling; its money is the invoice's payment in the money
core (`payments.standing`: fee and earning, refunds, disputes, the ledger check and the
reconciliation with Stripe's books); its coach is paid per delivered session from its
earning through payouts (earning ÷ the period's sessions, the remainder on the last).

What makes it a period: `Contract.membership_id`, and the window its sessions start in,
`period_start` to `period_end`. Unused credits expire at the end, unless
MEMBERSHIP_ROLLOVER_LIMIT lets up to that many still be booked in the next period
(`rollover_sessions` until `rollover_until`, set when the next period opens). Its total
is what the invoice charged, which may differ from a price per session times the
sessions (a proration), so the contract's price per session is only the rounded share.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import or_, select

import clock
import jobs
from accounts.timezones import format_local
from contracts import lifecycle
from contracts.models import (
    CoachingSession,
    Contract,
    ContractStatus,
    Proposal,
    ProposalStatus,
    SessionStatus,
)
from contracts.refund_policy import window_days_in_force
from contracts.services import fee_quote, lock_contract
from extensions import db
from offers.models import CreditGrant, Membership
from payments.models import Payment, PaymentRecordStatus
from payments.settle import settle
from scheduling.sessions import has_scheduled_session, used_count

PERIOD_FORMAT = "%d %b %Y"


def period_title(membership: Membership, start: datetime, end: datetime) -> str:
    """"Monthly coaching · 07 Dec 2026 – 07 Jan 2027", on the coach's calendar."""
    zone = membership.coach.timezone
    days = (f"{format_local(start, zone, PERIOD_FORMAT)} – "
            f"{format_local(end, zone, PERIOD_FORMAT)}")
    return f"{membership.title[:120 - len(days) - 3]} · {days}"


def open_period(membership: Membership, grant: CreditGrant, invoice: dict[str, Any],
                intent_id: str | None, charge_id: str | None) -> Contract | None:
    """The paid invoice's period as a paid contract of `grant.sessions` sessions, settled
    with the invoice's payment; None for an invoice that charged nothing. The caller
    holds the membership's lock and checked that the invoice was not seen before. Flushes.
    """
    if grant.amount_paid <= 0:
        return None
    contract, payment = period_contract(membership, grant, invoice, intent_id, charge_id)
    settle(payment, contract, actor_label="stripe",
           details={"membership_id": membership.id, "invoice": invoice["id"]})
    return contract


def period_contract(membership: Membership, grant: CreditGrant, invoice: dict[str, Any],
                    intent_id: str | None, charge_id: str | None) -> tuple[Contract, Payment]:
    """The grant's period contract and the invoice's payment, pending: what `open_period`
    settles. The grant points at the contract, and the previous period's unused credits
    roll over into it. Flushes."""
    amount = grant.amount_paid
    split = fee_quote(price_per_session=amount, session_count=1, currency=grant.currency)
    terms = {
        "coach_id": membership.coach_id, "student_id": membership.student_id,
        "title": period_title(membership, grant.period_start, grant.period_end),
        "description": f"Membership “{membership.title}”: {grant.sessions} sessions "
                       "in this period.",
        "session_count": grant.sessions,
        "minutes_per_session": membership.minutes_per_session,
        "price_per_session": max(amount // grant.sessions, 1),
        "currency": grant.currency,
    }
    proposal = Proposal(**terms, status=ProposalStatus.ACCEPTED, responded_at=clock.now())
    contract = Contract(
        proposal=proposal, **terms,
        total_amount=split.total, platform_fee=split.platform_fee,
        coach_earning=split.coach_earning,
        refund_full_window_days=window_days_in_force(),
        membership_id=membership.id,
        period_start=grant.period_start, period_end=grant.period_end,
    )
    payment = Payment(
        contract=contract, stripe_invoice_id=invoice["id"], payment_intent_id=intent_id,
        charge_id=charge_id, customer_id=invoice.get("customer"), amount=amount,
        currency=grant.currency, status=PaymentRecordStatus.PENDING,
        payment_method_type="card",
        stripe_metadata={"membership_id": str(membership.id), "invoice": invoice["id"]},
    )
    db.session.add_all([proposal, contract, payment])
    db.session.flush()
    _roll_over_into(membership, contract)
    grant.contract_id = contract.id
    return contract, payment


def _roll_over_into(membership: Membership, period: Contract) -> None:
    """The previous period's unused credits, up to MEMBERSHIP_ROLLOVER_LIMIT, may still be
    booked until the end of the period just opened."""
    limit = int(current_app.config["MEMBERSHIP_ROLLOVER_LIMIT"])
    if limit <= 0:
        return
    previous = db.session.scalar(  # the period before a renewal (not a move's top-up)
        select(Contract).where(Contract.membership_id == membership.id,
                               Contract.id != period.id,
                               Contract.period_end <= period.period_start)
        .order_by(Contract.period_start.desc()).limit(1))
    if previous is None:
        return
    unused = previous.session_allowance - used_count(previous.id)
    if unused > 0:
        previous.rollover_sessions = min(unused, limit)
        previous.rollover_until = period.period_end


def bookable_periods(membership: Membership,
                     moment: datetime | None = None) -> list[Contract]:
    """The period contracts whose credits can be booked at `moment` (now), oldest first:
    the running period, and a previous one whose rolled-over credits still run."""
    moment = moment or clock.now()
    return [period for period in db.session.scalars(
        select(Contract).where(
            Contract.membership_id == membership.id, Contract.period_start <= moment,
            or_(Contract.period_end > moment, Contract.rollover_until > moment))
        .order_by(Contract.period_start, Contract.id))
        if (period.bookable_until or moment) > moment]


@dataclass(frozen=True)
class OpenPeriod:
    """A period whose credits can be booked now, and how many are left to book."""

    contract: Contract
    left: int
    rolled_over: bool


def open_periods(membership: Membership, moment: datetime | None = None) -> list[OpenPeriod]:
    """`bookable_periods` with the credits each has left: the period's unused ones, or for
    a previous period the rolled-over ones not booked yet."""
    moment = moment or clock.now()
    found = []
    for period in bookable_periods(membership, moment):
        left = period.sessions_unlocked - used_count(period.id)
        end = period.period_end
        rolled = end is not None and end <= moment
        if end is not None and rolled:
            left = min(left, period.rollover_sessions - used_count(period.id, starting_from=end))
        found.append(OpenPeriod(period, max(left, 0), rolled))
    return found


def end_periods(membership: Membership, moment: datetime) -> None:
    """The membership ended at `moment`: its periods' credits can no longer be booked from
    then on (their windows end there) and the sessions booked from then on are cancelled,
    none of them used. Sessions before it stay as they are, to be marked and paid."""
    for period in bookable_periods(membership, moment):
        contract = lock_contract(period.id)
        assert contract is not None
        contract.period_end = min(contract.period_end or moment, moment)
        if contract.rollover_until is not None:
            contract.rollover_until = min(contract.rollover_until, moment)
        lifecycle.cancel_open_sessions(contract, "the membership ended.",
                                       starting_from=moment)


CLOSE_BATCH = 200


def close_ended_periods(moment: datetime | None = None) -> int:
    """Complete the periods whose window is over and that have no session left scheduled:
    their unused credits expired. Both parties are told, once (the move to completed).
    Each is locked and checked again, so a booking or a job at the same time decides
    first. Flushes; the caller commits. Returns how many closed."""
    moment = moment or clock.now()
    scheduled = select(CoachingSession.id).where(
        CoachingSession.contract_id == Contract.id,
        CoachingSession.status == SessionStatus.SCHEDULED)
    over = or_(Contract.rollover_sessions == 0, Contract.rollover_until.is_(None),
               Contract.rollover_until <= moment)
    due = list(db.session.scalars(
        select(Contract.id).where(
            Contract.membership_id.is_not(None), Contract.status == ContractStatus.ACTIVE,
            Contract.period_end <= moment, over, ~scheduled.exists())
        .order_by(Contract.period_end).limit(CLOSE_BATCH)))
    closed = 0
    for contract_id in due:
        contract = lock_contract(contract_id)
        if (contract is None or contract.status is not ContractStatus.ACTIVE
                or (contract.bookable_until or moment) > moment
                or has_scheduled_session(contract)):
            continue
        unused = max(contract.session_allowance - used_count(contract.id), 0)
        lifecycle.complete(contract, why=(
            f"The period “{contract.title}” is over"
            + (f"; its {unused} unused session{'s' if unused != 1 else ''} expired."
               if unused else "; all its sessions were used.")))
        closed += 1
    return closed


@jobs.periodic(jobs.hourly_at(23))
def close_periods() -> None:
    close_ended_periods()
    db.session.commit()


def rollover_words() -> str:
    """What the student is told about unused credits."""
    limit = int(current_app.config["MEMBERSHIP_ROLLOVER_LIMIT"])
    if limit <= 0:
        return "Unused sessions expire at the end of each period; they do not roll over."
    return (f"Up to {limit} unused session{'s' if limit != 1 else ''} of a period can still "
            "be booked during the next period; the rest expire at the period's end.")
