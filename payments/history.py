"""Read models for the people who pay and the people who are paid.

The student's payments (every attempt, across contracts), one printable receipt,
and the coach's earnings per paid contract. Each page is one query, whatever
the number of rows: payments come with their contract, contracts with their
refunds and delivered sessions as correlated sums. The refunds of the listed
payments, and the open refund requests of their contracts, come in one more
query each (a payment has no `refunds` relationship to eager-load).

And a contract's refund page for its student (`money_back`): today's quote,
whether a request can be made, and what was asked and refunded before.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from flask import abort
from sqlalchemy import func, select
from sqlalchemy.orm import contains_eager, joinedload

from accounts.models import User
from contracts.models import CoachingSession, Contract, ContractStatus, SessionStatus
from contracts.refund_policy import RefundQuote
from extensions import db
from payments import refunds
from payments.models import (
    Payment,
    PaymentRecordStatus,
    Refund,
    RefundRequest,
    RequestStatus,
)

# A payment whose money arrived at some point: only these have a receipt.
PAID_ONCE = frozenset(
    {
        PaymentRecordStatus.SUCCEEDED,
        PaymentRecordStatus.PARTIALLY_REFUNDED,
        PaymentRecordStatus.REFUNDED,
    }
)
# Sessions the coach has delivered: held, or missed by the student.
DELIVERED = (SessionStatus.COMPLETED, SessionStatus.NO_SHOW)


def payments_of_student(student: User) -> list[Payment]:
    """Every payment attempt on `student`'s contracts, newest first, each with its contract."""
    return list(
        db.session.scalars(
            select(Payment)
            .join(Payment.contract)
            .where(Contract.student_id == student.id)
            .options(contains_eager(Payment.contract))
            .order_by(func.coalesce(Payment.paid_at, Payment.created_at).desc(), Payment.id.desc())
        )
    )


def refunds_by_payment(payment_ids: Iterable[int]) -> dict[int, list[Refund]]:
    """The refunds of the given payments, oldest first per payment, in one query."""
    ids = sorted(set(payment_ids))
    found: dict[int, list[Refund]] = defaultdict(list)
    if ids:
        for refund in db.session.scalars(
            select(Refund).where(Refund.payment_id.in_(ids)).order_by(Refund.created_at, Refund.id)
        ):
            found[refund.payment_id].append(refund)
    return dict(found)


def open_requests_by_contract(contract_ids: Iterable[int]) -> dict[int, RefundRequest]:
    """The open refund request of each given contract that has one, in one query."""
    ids = sorted(set(contract_ids))
    if not ids:
        return {}
    return {
        request.contract_id: request
        for request in db.session.scalars(
            select(RefundRequest).where(
                RefundRequest.contract_id.in_(ids), RefundRequest.status == RequestStatus.OPEN
            )
        )
    }


def receipt_for(payment_id: int, student: User) -> Payment:
    """The payment if it is `student`'s and its money arrived once; anyone else gets a 404.

    The coach is not shown the student's receipt: it is the payer's document,
    and the coach's figures are on the earnings page.
    """
    payment = db.session.scalar(
        select(Payment)
        .join(Payment.contract)
        .where(
            Payment.id == payment_id,
            Contract.student_id == student.id,
            Payment.status.in_(PAID_ONCE),
        )
        .options(
            contains_eager(Payment.contract).options(
                joinedload(Contract.coach), joinedload(Contract.student)
            )
        )
    )
    if payment is None:
        abort(404)
    return payment


@dataclass(frozen=True)
class ContractEarning:
    """One paid contract as its coach sees it; amounts in the contract's minor units.

    Refunds reduce the coach's earning pro rata: the coach's share of `refunded`
    is `refunded × coach_earning // total` (rounded down, so any remainder of a
    minor unit is borne by the platform). `earned` is the earning of the delivered
    sessions, `coach_earning × delivered // session_count`, never more than the
    net; `to_earn` is the rest of the net.
    """

    contract_id: int
    title: str
    student_name: str
    status: ContractStatus
    currency: str
    paid_at: datetime
    total: int
    platform_fee: int
    coach_earning: int
    session_count: int
    delivered: int
    refunded: int

    @property
    def refunded_from_coach(self) -> int:
        if self.total == 0:
            return 0
        return self.refunded * self.coach_earning // self.total

    @property
    def net_earning(self) -> int:
        return self.coach_earning - self.refunded_from_coach

    @property
    def earned(self) -> int:
        delivered = min(self.delivered, self.session_count)
        return min(self.coach_earning * delivered // self.session_count, self.net_earning)

    @property
    def to_earn(self) -> int:
        return self.net_earning - self.earned


# The figures summed per currency, in the order the totals row shows them.
TOTALLED = (
    "total",
    "platform_fee",
    "coach_earning",
    "refunded",
    "net_earning",
    "earned",
    "to_earn",
)


@dataclass
class Earnings:
    """A coach's paid contracts and their sums per currency (currencies are never added up)."""

    contracts: list[ContractEarning]
    totals: dict[str, dict[str, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        sums: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(TOTALLED, 0))
        for row in self.contracts:
            for name in TOTALLED:
                sums[row.currency][name] += getattr(row, name)
        self.totals = dict(sorted(sums.items()))


def earnings_of(coach: User) -> Earnings:
    """Every contract of `coach` that was paid, newest payment first, with its sums."""
    refunded = (
        select(func.coalesce(func.sum(Payment.amount_refunded), 0))
        .where(Payment.contract_id == Contract.id, Payment.void_reason.is_(None))
        .correlate(Contract)
        .scalar_subquery()
    )
    delivered = (
        select(func.count())
        .select_from(CoachingSession)
        .where(CoachingSession.contract_id == Contract.id, CoachingSession.status.in_(DELIVERED))
        .correlate(Contract)
        .scalar_subquery()
    )
    rows = db.session.execute(
        select(
            Contract.id,
            Contract.title,
            User.name,
            Contract.status,
            Contract.currency,
            Contract.paid_at,
            Contract.total_amount,
            Contract.platform_fee,
            Contract.coach_earning,
            Contract.session_count,
            delivered,
            refunded,
        )
        .join(User, User.id == Contract.student_id)
        .where(Contract.coach_id == coach.id, Contract.paid_at.is_not(None))
        .order_by(Contract.paid_at.desc(), Contract.id.desc())
    )
    return Earnings([ContractEarning(*row) for row in rows])  # type: ignore[call-arg, arg-type]


@dataclass(frozen=True)
class MoneyBack:
    """A contract's refund page, as its student sees it.

    `why_not` says why no request can be made now (nothing paid, everything
    refunded, an open dispute, an offline payment, or a policy that gives
    nothing back any more); `open_request` is the request waiting for an admin.
    """

    quote: RefundQuote
    why_not: str | None
    open_request: RefundRequest | None
    decided: list[RefundRequest]  # approved or rejected, newest first
    refunds: list[Refund]  # every refund of the contract, newest first

    @property
    def can_ask(self) -> bool:
        return self.why_not is None and self.open_request is None


def money_back(contract: Contract) -> MoneyBack:
    """What the contract's own policy gives back today, and what was asked and refunded."""
    money = refunds.refundable(contract)
    offer = refunds.quote_now(contract, money)
    why_not = refunds.refusal(contract, money)
    if why_not is None and offer.amount <= 0:
        why_not = offer.explanation
    requests = refunds.requests_of_contract(contract.id)
    return MoneyBack(
        quote=offer,
        why_not=why_not,
        open_request=next((r for r in requests if r.status is RequestStatus.OPEN), None),
        decided=[r for r in requests if r.status is not RequestStatus.OPEN],
        refunds=refunds.refunds_of_contract(contract.id),
    )
