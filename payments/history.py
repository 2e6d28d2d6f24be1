"""Read models for the people who pay and the people who are paid.

The student's payments (every attempt, across contracts), one printable receipt,
and the coach's earnings per paid contract. Each page is one query, whatever
the number of rows: payments come with their contract, contracts with their
delivered sessions as a correlated count. The refunds of the listed payments,
and the open refund requests of their contracts, come in one more query each
(a payment has no `refunds` relationship to eager-load); the contracts' money,
from their standings (`payments.standing`), in a fixed few more.

And a contract's refund page for its student (`money_back`): today's quote,
whether a request can be made, and what was asked and refunded before.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import contains_eager, joinedload

from accounts.models import User
from contracts.models import CoachingSession, Contract, ContractStatus, SessionStatus
from contracts.refund_policy import RefundQuote
from errors import NotFound
from extensions import db
from payments import refunds
from payments.models import (
    Payment,
    PaymentRecordStatus,
    Refund,
    RefundRequest,
    RequestStatus,
)
from payments.standing import Standing, standings_of

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
        raise NotFound()
    return payment


@dataclass(frozen=True)
class ContractEarning:
    """One paid contract as its coach sees it; amounts in the contract's minor units.

    Every figure is the contract's standing (`payments.standing`), so a plan shows
    what its payments brought so far and a refund takes its share off:

    - `received`: what the payments that count brought (refunded or not);
    - `fee` and `net_earning`: the platform's and the coach's parts of the money
      kept, net of refunds (`Standing.fee`, `Standing.earning`);
    - `refunded`: what went back to the student (refunds, disputes lost);
    - `earned`: the parts of the sessions delivered (completed or missed by the
      student), each net of refunds, never more than `net_earning`; `to_earn` is
      the rest of it.
    """

    contract_id: int
    title: str
    student_name: str
    status: ContractStatus
    currency: str
    paid_at: datetime
    total: int
    session_count: int
    delivered: int
    standing: Standing

    @property
    def received(self) -> int:
        return self.standing.arrived

    @property
    def fee(self) -> int:
        return self.standing.fee

    @property
    def net_earning(self) -> int:
        return self.standing.earning

    @property
    def refunded(self) -> int:
        return self.standing.returned

    @property
    def earned(self) -> int:
        # Share k belongs to the k-th delivered session (`payouts.shares`).
        parts = self.standing.coach_parts_net[: max(self.delivered, 0)]
        return min(sum(parts), self.net_earning)

    @property
    def to_earn(self) -> int:
        return self.net_earning - self.earned


# The figures summed per currency, in the order the totals card shows them.
TOTALLED = (
    "received",
    "fee",
    "net_earning",
    "refunded",
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
    """Every contract of `coach` that was paid, newest payment first, with its sums.

    One query for the contracts (with their student's name and delivered sessions),
    then their standings in a fixed number more, whatever the number of contracts.
    """
    delivered = (
        select(func.count())
        .select_from(CoachingSession)
        .where(CoachingSession.contract_id == Contract.id, CoachingSession.status.in_(DELIVERED))
        .correlate(Contract)
        .scalar_subquery()
    )
    rows = db.session.execute(
        select(Contract, User.name, delivered)
        .join(User, User.id == Contract.student_id)
        .where(Contract.coach_id == coach.id, Contract.paid_at.is_not(None))
        .order_by(Contract.paid_at.desc(), Contract.id.desc())
    ).all()
    standings = standings_of(contract for contract, _name, _delivered in rows)
    return Earnings(
        [
            ContractEarning(
                contract_id=contract.id,
                title=contract.title,
                student_name=student_name,
                status=contract.status,
                currency=contract.currency,
                paid_at=contract.paid_at,
                total=contract.total_amount,
                session_count=contract.session_count,
                delivered=count,
                standing=standings[contract.id],
            )
            for contract, student_name, count in rows
        ]
    )


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
