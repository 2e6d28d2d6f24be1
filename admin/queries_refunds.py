"""Read models of money going back: open refund requests, refunds, disputes, a contract's part.

Decisions and amounts are the service's (`payments.refunds`); these only read,
so a page shows the same quote and the same refusal the service would apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, func, select
from sqlalchemy.orm import selectinload

from contracts.models import Contract, ContractStatus
from contracts.refund_policy import RefundQuote
from extensions import db
from payments import refunds
from payments.models import Dispute, Refund, RefundRequest, RefundStatus, RequestStatus
from payments.refunds import disputes
from payments.standing import Standing as Refundable

REQUESTS_SHOWN = 100  # the oldest open requests first; the rest wait for the next page load
REFUNDS_SHOWN = 100
CLOSED_DISPUTES_SHOWN = 50
# An evidence deadline closer than this is highlighted.
DEADLINE_WARNING = timedelta(days=3)


@dataclass(frozen=True)
class RequestRow:
    """An open request with where its contract stands today."""

    request: RefundRequest
    quote: RefundQuote  # today's, net of refunds pending or made
    money: Refundable
    refusal: str | None  # why no refund can be made now, if so
    dispute: Dispute | None  # the contract's open dispute


def _with_contract(request: RefundRequest) -> RequestRow:
    contract = request.contract
    money = refunds.refundable(contract)
    return RequestRow(
        request=request,
        quote=refunds.quote_now(contract, money),
        money=money,
        refusal=refunds.refusal(contract, money),
        dispute=refunds.open_dispute_of(contract),
    )


def _requests() -> Select[RefundRequest]:
    return select(RefundRequest).options(
        selectinload(RefundRequest.student),
        selectinload(RefundRequest.contract).selectinload(Contract.coach),
    )


def open_requests() -> tuple[list[RequestRow], int]:
    """The oldest open requests (at most REQUESTS_SHOWN), and how many are open in all."""
    found = db.session.scalars(
        _requests()
        .where(RefundRequest.status == RequestStatus.OPEN)
        .order_by(RefundRequest.created_at, RefundRequest.id)
        .limit(REQUESTS_SHOWN)
    )
    rows = [_with_contract(r) for r in found]
    total: int | None = len(rows)
    if total == REQUESTS_SHOWN:
        total = db.session.scalar(
            select(func.count())
            .select_from(RefundRequest)
            .where(RefundRequest.status == RequestStatus.OPEN)
        )
    return rows, int(total or 0)


def requests_by_id(ids: list[int]) -> dict[int, RefundRequest]:
    """Requests (contract and student loaded) by id, for a bulk decision's results."""
    if not ids:
        return {}
    found = db.session.scalars(_requests().where(RefundRequest.id.in_(ids)))
    return {r.id: r for r in found}


def recent_refunds(status: RefundStatus | None = None) -> list[Refund]:
    """The newest refunds of every source, optionally of one status."""
    query = select(Refund).options(selectinload(Refund.contract), selectinload(Refund.requested_by))
    if status is not None:
        query = query.where(Refund.status == status)
    return list(
        db.session.scalars(
            query.order_by(Refund.created_at.desc(), Refund.id.desc()).limit(REFUNDS_SHOWN)
        )
    )


# --- disputes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DisputeRow:
    dispute: Dispute
    urgency: str | None  # "past" (the deadline went by), "soon" (within 3 days), or None


def urgency(due: datetime | None, now: datetime) -> str | None:
    if due is None:
        return None
    if due <= now:
        return "past"
    return "soon" if due - now < DEADLINE_WARNING else None


def open_dispute_rows(now: datetime) -> list[DisputeRow]:
    """Open disputes, the nearest evidence deadline first, each with its urgency."""
    return [DisputeRow(d, urgency(d.evidence_due_by, now)) for d in disputes.open_disputes()]


def closed_disputes() -> list[Dispute]:
    """The disputes most recently decided, with their outcome (Stripe's status)."""
    return list(
        db.session.scalars(
            select(Dispute)
            .options(selectinload(Dispute.contract))
            .where(Dispute.closed_at.is_not(None))
            .order_by(Dispute.closed_at.desc(), Dispute.id.desc())
            .limit(CLOSED_DISPUTES_SHOWN)
        )
    )


# --- the dashboard -------------------------------------------------------------------------


@dataclass(frozen=True)
class MoneyBackAttention:
    """What waits for an admin: open refund requests, open disputes and their nearest deadline."""

    open_requests: int
    oldest_request_at: datetime | None
    open_disputes: int
    nearest_due: datetime | None


def attention() -> MoneyBackAttention:
    requests, oldest = db.session.execute(
        select(func.count(), func.min(RefundRequest.created_at)).where(
            RefundRequest.status == RequestStatus.OPEN
        )
    ).one()
    open_disputes, nearest = db.session.execute(
        select(func.count(), func.min(Dispute.evidence_due_by)).where(Dispute.closed_at.is_(None))
    ).one()
    return MoneyBackAttention(int(requests), oldest, int(open_disputes), nearest)


# --- a contract's page ---------------------------------------------------------------------


@dataclass(frozen=True)
class ContractMoneyBack:
    """The "Money back" part of a contract's admin page."""

    contract: Contract
    requests: list[RefundRequest]
    refunds: list[Refund]
    money: Refundable
    quote: RefundQuote  # today's
    refusal: str | None  # why no refund can be made now, if so
    dispute: Dispute | None

    @property
    def can_cancel(self) -> bool:
        """Active and paid: an admin may end it and refund what the policy gives now."""
        return self.contract.status is ContractStatus.ACTIVE and self.contract.paid_at is not None

    @property
    def can_refund(self) -> bool:
        """Paid, and Stripe can still give something back."""
        return self.contract.paid_at is not None and self.refusal is None


def contract_money_back(contract: Contract) -> ContractMoneyBack:
    money = refunds.refundable(contract)
    return ContractMoneyBack(
        contract=contract,
        requests=refunds.requests_of_contract(contract.id),
        refunds=refunds.refunds_of_contract(contract.id),
        money=money,
        quote=refunds.quote_now(contract, money),
        refusal=refunds.refusal(contract, money),
        dispute=refunds.open_dispute_of(contract),
    )
