"""Where a contract's money stands: the one place that counts it.

Every page, job, figure and check reads a contract's money from here: the
student's Payments page and receipts, the coach's Earnings and Payouts pages,
the admin dashboard's fees and earnings, refund quotes and what can still be
refunded, payout shares and their reversals, and the ledger check. `settle`
copies the contract's part of it (`Standing.received`) onto the contract's row,
so scheduling unlocks sessions without reading payments.

The figures, in minor units of the contract's currency:

- `arrived`: what the payments that count brought (succeeded, refunded or not;
  never a void payment, which goes back in full);
- `waived`: shortfalls an admin wrote off when accepting a short payment;
- `refunded`: refunds that succeeded, of payments that count; `lost`: disputes
  the student's bank won; `returned` is both;
- `excess`: what arrived (plus what was written off) beyond the total; refunds
  give it back first, so it never counts towards sessions or shares.

The fee and earning of a payment are cumulative shares of the contract's split
(`payment_split`): the fee on everything paid so far minus the fee on what was
paid before it, so the parts of a plan add up to the contract's fee exactly.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import func, select

from contracts.models import Contract
from contracts.money import Received
from extensions import db
from payments.models import (
    LIVE_REFUND_STATUSES,
    Dispute,
    Payment,
    PaymentRecordStatus,
    Refund,
    RefundRequest,
    RefundStatus,
    RequestStatus,
)

# Payments whose money counts for their contract (unless void).
PAID_STATUSES = (
    PaymentRecordStatus.SUCCEEDED,
    PaymentRecordStatus.PARTIALLY_REFUNDED,
    PaymentRecordStatus.REFUNDED,
)
# Stripe's word for a dispute the student's bank won: the money went back.
DISPUTE_LOST = "lost"


# --- the arithmetic ------------------------------------------------------------------


def split(earning: int, count: int) -> list[int]:
    """`earning` in `count` equal parts rounded down, the remainder on the last."""
    if count < 1 or earning < 0:
        raise ValueError("a split needs at least one part and no negative earning")
    part = earning // count
    return [part] * (count - 1) + [earning - part * (count - 1)]


def refund_cut(amount: int, returned: int, total: int) -> int:
    """What money given back takes off a coach's part: amount × returned ÷ total, rounded
    up, so that what the part keeps is its share of the price kept rounded down: the
    parts together never keep more than the price kept (the platform's fee is never
    negative, whatever is given back)."""
    if total <= 0 or returned <= 0:
        return 0
    return min(-(-amount * returned // total), amount)


def fee_on(platform_fee: int, total: int, paid: int) -> int:
    """The platform's fee on `paid` of `total` (never beyond the total), rounded down."""
    if total <= 0:
        return 0
    return platform_fee * min(max(paid, 0), total) // total


def payment_split(
    platform_fee: int, total: int, paid_before: int, amount: int
) -> tuple[int, int]:
    """(fee, coach's part) of a payment of `amount` after `paid_before` arrived already.

    Cumulative: the fee on all paid so far minus the fee on what came before, so
    the parts of every payment of a contract add up to its fee exactly; the rest
    of the amount is the coach's part (an overpayment's excess included).
    """
    fee = fee_on(platform_fee, total, paid_before + amount) - fee_on(
        platform_fee, total, paid_before
    )
    return fee, amount - fee


# --- a contract's standing -----------------------------------------------------------


@dataclass(frozen=True)
class PaymentLeft:
    """One payment that counts, and what can still go back of it."""

    payment: Payment
    refunded_or_pending: int
    lost: int  # a dispute on it was lost: the bank took it back, nothing more can go

    @property
    def left(self) -> int:
        if self.lost:
            return 0
        return max(self.payment.amount - self.refunded_or_pending, 0)

    @property
    def through_stripe(self) -> bool:
        return self.payment.manual_method is None and self.payment.payment_intent_id is not None


@dataclass(frozen=True)
class Standing:
    """Where one contract's money stands (see the module's docstring for the figures)."""

    contract_id: int
    currency: str
    total: int
    platform_fee: int
    coach_earning: int
    session_count: int
    arrived: int = 0
    waived: int = 0
    refunded: int = 0
    refund_pending: int = 0
    lost: int = 0
    payments: tuple[PaymentLeft, ...] = ()
    open_dispute: Dispute | None = None
    open_request: RefundRequest | None = None
    coach_parts: list[int] = field(default_factory=list)

    # what arrived and what went back

    @property
    def returned(self) -> int:
        return self.refunded + self.lost

    @property
    def taken_twice(self) -> int:
        """What went back beyond what arrived: a dispute lost on a charge refunded already
        takes the money a second time. The platform bears it."""
        return max(self.returned - self.arrived, 0)

    @property
    def excess(self) -> int:
        return max(self.arrived + self.waived - self.total, 0)

    @property
    def returned_of_price(self) -> int:
        """What went back of the price itself (refunds give any excess back first), never
        more than the price that arrived: a dispute lost on a charge refunded already takes
        the money a second time, which is the platform's loss, not a lower price."""
        return min(max(self.returned - self.excess, 0), self.arrived - self.excess)

    @property
    def covered(self) -> int:
        """The part of the total received or written off."""
        return min(self.arrived + self.waived, self.total)

    @property
    def still_to_pay(self) -> int:
        return self.total - self.covered

    @property
    def kept(self) -> int:
        """The student's money the contract holds now."""
        return self.arrived - self.returned

    @property
    def excess_kept(self) -> int:
        return self.excess - min(self.returned, self.excess)

    @property
    def unlocking(self) -> int:
        """The paid share that opens sessions: covered, less what went back of the price."""
        return max(self.covered - self.returned_of_price, 0)

    @property
    def received(self) -> Received:
        """The contract's copy of these figures (`contracts.lifecycle`)."""
        return Received(self.arrived, self.waived, self.returned)

    # fee and earning

    @property
    def gross_fee(self) -> int:
        """The fee on what arrived, before anything went back (the invoices' sum)."""
        return fee_on(self.platform_fee, self.total, self.arrived)

    @property
    def gross_earning(self) -> int:
        return self.arrived - self.gross_fee

    @property
    def coach_parts_net(self) -> list[int]:
        """Each session's part of the coach's earning, less what refunds take off it."""
        returned = self.returned_of_price
        return [part - refund_cut(part, returned, self.total) for part in self.coach_parts]

    @property
    def earning(self) -> int:
        """The coach's earning on the money kept: once the total is covered, their
        session parts net of refunds (what payouts transfer); before, the earning's
        share of the price kept so far."""
        if self.covered >= self.total:
            return sum(self.coach_parts_net)
        # Short of the total (a plan under way): the earning's share of the price kept.
        return self.coach_earning * self.unlocking // self.total if self.total else 0

    @property
    def fee(self) -> int:
        """The platform's part of the price kept (less any write-off it bears)."""
        return self.arrived - self.excess - self.returned_of_price - self.earning

    # refunds

    @property
    def refundable(self) -> int:
        """What can still be given back, all payments together."""
        return sum(item.left for item in self.payments)

    def refund_target(self, *, through_stripe: bool = True) -> PaymentLeft | None:
        """The payment a new refund goes to: the one with the most left, paid the way
        asked (through Stripe, or offline for a refund made by hand)."""
        return max(
            (
                item
                for item in self.payments
                if item.left > 0 and item.through_stripe is through_stripe
            ),
            key=lambda item: (item.left, item.payment.id),
            default=None,
        )

    @property
    def paid(self) -> int:
        """What arrived (the refund pages' word)."""
        return self.arrived

    @property
    def refunded_or_pending(self) -> int:
        """What went back or is on its way back."""
        return self.returned + self.refund_pending

    @property
    def left(self) -> int:
        """What can still be given back (the refund pages' word for `refundable`)."""
        return self.refundable

    @property
    def refund_blocked_by_dispute(self) -> bool:
        return self.open_dispute is not None and not self.open_dispute.is_charge_refundable


def standings_of(contracts: Iterable[Contract]) -> dict[int, Standing]:
    """The standing of each contract, in three queries whatever their number."""
    by_id = {contract.id: contract for contract in contracts}
    if not by_id:
        return {}
    ids = sorted(by_id)
    paying: dict[int, list[Payment]] = defaultdict(list)
    for payment in db.session.scalars(
        select(Payment)
        .where(
            Payment.contract_id.in_(ids),
            Payment.void_reason.is_(None),
            Payment.status.in_(PAID_STATUSES),
        )
        .order_by(Payment.id)
    ):
        paying[payment.contract_id].append(payment)
    refunds: dict[tuple[int, RefundStatus], int] = defaultdict(int)
    for payment_id, status, amount in db.session.execute(
        select(Refund.payment_id, Refund.status, func.sum(Refund.amount))
        .where(Refund.contract_id.in_(ids), Refund.status.in_(LIVE_REFUND_STATUSES))
        .group_by(Refund.payment_id, Refund.status)
    ):
        refunds[(payment_id, status)] = int(amount)
    disputes: dict[int, list[Dispute]] = defaultdict(list)
    for dispute in db.session.scalars(
        select(Dispute).where(Dispute.contract_id.in_(ids)).order_by(Dispute.id)
    ):
        disputes[dispute.contract_id].append(dispute)
    found = {}
    for contract_id, contract in by_id.items():
        items = []
        refunded = pending = lost = 0
        counted = {payment.id for payment in paying[contract_id]}
        lost_on: dict[int, int] = defaultdict(int)
        for dispute in disputes[contract_id]:
            if dispute.status == DISPUTE_LOST and dispute.payment_id in counted:
                lost_on[dispute.payment_id] += dispute.amount
        for payment in paying[contract_id]:
            done = refunds[(payment.id, RefundStatus.SUCCEEDED)]
            waiting = refunds[(payment.id, RefundStatus.PENDING)]
            refunded += done
            pending += waiting
            lost += lost_on[payment.id]
            items.append(PaymentLeft(payment, done + waiting, lost_on[payment.id]))
        # Only a dispute on a payment that counts holds the contract's money (one on a
        # payment held for review is the admin's to decide, `payments.refunds.disputes`).
        open_dispute = next(
            (d for d in reversed(disputes[contract_id])
             if d.closed_at is None and d.payment_id in counted),
            None,
        )
        found[contract_id] = Standing(
            contract_id=contract.id,
            currency=contract.currency,
            total=contract.total_amount,
            platform_fee=contract.platform_fee,
            coach_earning=contract.coach_earning,
            session_count=contract.session_count,
            arrived=sum(p.amount for p in paying[contract_id]),
            waived=sum(p.amount_waived for p in paying[contract_id]),
            refunded=refunded,
            refund_pending=pending,
            lost=lost,
            payments=tuple(items),
            open_dispute=open_dispute,
            coach_parts=split(contract.coach_earning, contract.session_count),
        )
    return found


def standing_of(contract: Contract) -> Standing:
    """Where `contract`'s money stands now, with its open refund request.

    Decide amounts from it only under the contract's lock (`lock_with_contract`).
    """
    standing = standings_of([contract])[contract.id]
    request = db.session.scalar(
        select(RefundRequest).where(
            RefundRequest.contract_id == contract.id, RefundRequest.status == RequestStatus.OPEN
        )
    )
    if request is None:
        return standing
    return Standing(**{**standing.__dict__, "open_request": request})


def given_back(contract: Contract) -> int:
    """What went back to the student of the contract's price (refunds made, disputes
    lost): what payouts take off the coach's shares (`refund_cut`)."""
    return standing_of(contract).returned_of_price
