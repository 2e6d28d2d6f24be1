"""Reconciliation: a UTC day's balance transactions at Stripe against our records.

Every movement on the platform's Stripe balance is a balance transaction. For a day,
each one is matched with the record it stands for, by the id of its `source`:

| Stripe's reporting category | our record                     | amount on the balance |
| --------------------------- | ------------------------------ | --------------------- |
| charge                      | a payment (by charge or intent) | + the payment         |
| refund                      | a refund                       | − the refund          |
| refund_failure              | a refund that failed           | + the refund          |
| dispute                     | a dispute                      | − the disputed amount |
| dispute_reversal            | a dispute won                  | + the disputed amount |
| transfer                    | a session share's transfer     | − what it sent        |
| transfer_reversal           | a reversal of a share          | + what it took back   |

Other categories (Stripe's payouts to the platform's bank, Stripe's own fees, top-ups)
have no record of ours; they are counted in the day's totals only.

Three kinds of difference are reported: a transaction with no record of ours
(missing on our side), a record of ours of that day with no transaction (missing at
Stripe: looked for from the day before to the day after, since the two clocks and a
late job may put them on neighbouring days), and amounts, currencies or a charge's fee
that differ. A charge whose fee we have not read yet gets it from its transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

import clock
import jobs
from accounts.models import User
from audit.services import record as audit
from books.fees import keep_fee
from books.models import Difference, ReconciliationItem, ReconciliationRun
from contracts.money import format_money
from extensions import db
from payments import stripe_api
from payments.models import Dispute, Payment, Refund, RefundStatus
from payments.standing import PAID_STATUSES
from payouts.models import SessionShare, TransferReversal

log = logging.getLogger(__name__)

ONE_DAY = timedelta(days=1)
# How far from its own day a record of ours is looked for at Stripe (and the reverse): our
# clock and Stripe's differ a little, and a job may record a movement after midnight.
NEIGHBOURS = ONE_DAY
# The categories we keep records for, each with the sign it has on the balance.
MATCHED = ("charge", "refund", "refund_failure", "dispute", "dispute_reversal", "transfer",
           "transfer_reversal")
# Balance transaction types → reporting category, for a transaction without one.
CATEGORY_OF_TYPE = {
    "charge": "charge", "payment": "charge", "refund": "refund", "payment_refund": "refund",
    "refund_failure": "refund_failure", "payment_failure_refund": "refund_failure",
    "transfer": "transfer", "transfer_refund": "transfer_reversal", "payout": "payout",
    "stripe_fee": "fee",
}
GIVEN_BACK = (RefundStatus.FAILED, RefundStatus.CANCELED)


def midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def unix(moment: datetime) -> int:
    return int(moment.timestamp())


def category_of(transaction: dict[str, Any]) -> str:
    reported = transaction.get("reporting_category")
    if reported:
        return str(reported)
    return CATEGORY_OF_TYPE.get(str(transaction.get("type")), str(transaction.get("type")))


def source_of(transaction: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """The source's id, and the source itself when it was expanded."""
    source = transaction.get("source")
    if isinstance(source, dict):
        return source.get("id"), source
    return source, {}


@dataclass(frozen=True)
class Ours:
    """One record of ours as it should appear on Stripe's balance."""

    category: str
    amount: int  # signed, as on the balance
    currency: str
    label: str
    link: str | None
    fee: int | None = None  # Stripe's fee we recorded (charges)
    payment_id: int | None = None  # a charge's payment, to keep a fee read now


@dataclass
class Check:
    """What one run found, before it is written."""

    day: date
    transactions: int = 0
    matched: int = 0
    totals: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    items: list[ReconciliationItem] = field(default_factory=list)

    def count(self, category: str, transaction: dict[str, Any]) -> None:
        self.transactions += 1
        figures = self.totals.setdefault(category, {}).setdefault(
            str(transaction["currency"]), {"count": 0, "amount": 0, "fee": 0, "net": 0})
        figures["count"] += 1
        for name in ("amount", "fee", "net"):
            figures[name] += int(transaction.get(name) or 0)

    def differ(self, kind: Difference, category: str, currency: str, note: str, *,
               transaction: dict[str, Any] | None = None, source_id: str | None = None,
               stripe_amount: int | None = None, ours: Ours | None = None) -> None:
        self.items.append(ReconciliationItem(
            kind=kind, category=category, currency=currency, note=note[:500],
            balance_transaction_id=transaction["id"] if transaction else None,
            source_id=source_id, stripe_amount=stripe_amount,
            our_amount=ours.amount if ours else None,
            ours=ours.label if ours else None, link=ours.link if ours else None,
        ))


# --- our side -------------------------------------------------------------------------


def _contract_link(contract_id: int) -> str:
    return f"/admin/contracts/{contract_id}"


def _payment(payment: Payment) -> Ours:
    return Ours("charge", payment.amount, payment.currency, f"payment {payment.id}",
                f"/admin/payments/{payment.id}", fee=payment.stripe_fee, payment_id=payment.id)


def _refund(refund: Refund, category: str) -> Ours:
    sign = -1 if category == "refund" else 1
    return Ours(category, sign * refund.amount, refund.currency, f"refund {refund.id}",
                _contract_link(refund.contract_id))


def _dispute(dispute: Dispute, category: str) -> Ours:
    sign = -1 if category == "dispute" else 1
    return Ours(category, sign * dispute.amount, dispute.currency, f"dispute {dispute.id}",
                _contract_link(dispute.contract_id))


def _share(share: SessionShare) -> Ours:
    return Ours("transfer", -(share.transfer_amount or 0), share.currency,
                f"session share {share.id}", _contract_link(share.contract_id))


def _reversal(reversal: TransferReversal) -> Ours:
    return Ours("transfer_reversal", reversal.amount, reversal.currency,
                f"reversal {reversal.id} of share {reversal.share_id}",
                _contract_link(reversal.share.contract_id))


def records_for(sources: list[tuple[str, str, dict[str, Any]]]) -> dict[tuple[str, str], Ours]:
    """Our records of the day's transactions, by (category, source id): one query per kind
    of record, whatever the number of transactions. `sources` holds each transaction's
    category, source id and (expanded) source."""
    wanted: dict[str, set[str]] = {}
    for category, source_id, _ in sources:
        wanted.setdefault(category, set()).add(source_id)
    intents = {str(source["payment_intent"]) for category, _, source in sources
               if category == "charge" and isinstance(source.get("payment_intent"), str)}
    found: dict[tuple[str, str], Ours] = {}

    def ids(*categories: str) -> set[str]:
        return set().union(*(wanted.get(category, set()) for category in categories))

    if charges := ids("charge"):
        payments = list(db.session.scalars(select(Payment).where(
            Payment.charge_id.in_(charges) | Payment.payment_intent_id.in_(intents))))
        by_key = {key: p for p in payments for key in (p.charge_id, p.payment_intent_id) if key}
        for category, source_id, source in sources:
            payment = (by_key.get(source_id) or by_key.get(str(source.get("payment_intent")))
                       if category == "charge" else None)
            if payment is not None:
                found["charge", source_id] = _payment(payment)
    if refunds := ids("refund", "refund_failure"):
        for refund in db.session.scalars(
                select(Refund).where(Refund.stripe_refund_id.in_(refunds))):
            for category in ("refund", "refund_failure"):
                found[category, str(refund.stripe_refund_id)] = _refund(refund, category)
    if disputes := ids("dispute", "dispute_reversal"):
        for dispute in db.session.scalars(
                select(Dispute).where(Dispute.stripe_dispute_id.in_(disputes))):
            for category in ("dispute", "dispute_reversal"):
                found[category, dispute.stripe_dispute_id] = _dispute(dispute, category)
    if transfers := ids("transfer"):
        for share in db.session.scalars(
                select(SessionShare).where(SessionShare.stripe_transfer_id.in_(transfers))):
            found["transfer", str(share.stripe_transfer_id)] = _share(share)
    if reversals := ids("transfer_reversal"):
        for reversal in db.session.scalars(
                select(TransferReversal).options(joinedload(TransferReversal.share))
                .where(TransferReversal.stripe_reversal_id.in_(reversals))):
            found["transfer_reversal", reversal.stripe_reversal_id] = _reversal(reversal)
    return found


def records_of(day: date) -> Iterable[tuple[Ours, tuple[str, ...]]]:
    """Our records dated `day` that Stripe's balance must show, each with the source ids
    (or a charge's payment intent) a transaction may carry for it."""
    start, end = midnight(day), midnight(day + ONE_DAY)
    for payment in db.session.scalars(
        select(Payment).where(
            Payment.payment_intent_id.is_not(None), Payment.manual_method.is_(None),
            Payment.status.in_(PAID_STATUSES), Payment.paid_at >= start, Payment.paid_at < end)
    ):
        keys = tuple(k for k in (payment.charge_id, payment.payment_intent_id) if k)
        yield _payment(payment), keys
    for refund in db.session.scalars(
        select(Refund).where(Refund.stripe_refund_id.is_not(None), Refund.created_at >= start,
                             Refund.created_at < end)
    ):
        assert refund.stripe_refund_id is not None
        yield _refund(refund, "refund"), (refund.stripe_refund_id,)
    won_that_day = (Dispute.status == "won") & (Dispute.closed_at >= start) & (
        Dispute.closed_at < end)
    for dispute in db.session.scalars(select(Dispute).where(
            ((Dispute.created_at >= start) & (Dispute.created_at < end)) | won_that_day)):
        if start <= dispute.created_at < end:  # the withdrawal
            yield _dispute(dispute, "dispute"), (dispute.stripe_dispute_id,)
        if dispute.status == "won" and dispute.closed_at and start <= dispute.closed_at < end:
            yield _dispute(dispute, "dispute_reversal"), (dispute.stripe_dispute_id,)
    for share in db.session.scalars(
        select(SessionShare).where(SessionShare.stripe_transfer_id.is_not(None),
                                   SessionShare.transferred_at >= start,
                                   SessionShare.transferred_at < end)
    ):
        assert share.stripe_transfer_id is not None
        yield _share(share), (share.stripe_transfer_id,)
    for reversal in db.session.scalars(
        select(TransferReversal).where(TransferReversal.created_at >= start,
                                       TransferReversal.created_at < end)
    ):
        yield _reversal(reversal), (reversal.stripe_reversal_id,)


# --- the check --------------------------------------------------------------------------


def _compare(check: Check, category: str, transaction: dict[str, Any], source_id: str,
             ours: Ours) -> None:
    amount, currency = int(transaction["amount"]), str(transaction["currency"])
    if currency != ours.currency or amount != ours.amount:
        check.differ(Difference.AMOUNT, category, currency,
                     f"Stripe's balance moved {format_money(amount, currency)}; {ours.label} "
                     f"says {format_money(ours.amount, ours.currency)}.",
                     transaction=transaction, source_id=source_id, stripe_amount=amount,
                     ours=ours)
        return
    if category == "charge" and ours.payment_id is not None:
        fee = int(transaction.get("fee") or 0)
        if ours.fee is None:
            keep_fee(ours.payment_id, transaction, source_id)  # first read: kept
        elif ours.fee != fee:
            check.differ(Difference.AMOUNT, category, currency,
                         f"Stripe's fee is {format_money(fee, currency)}; {ours.label} records "
                         f"{format_money(ours.fee, currency)}.",
                         transaction=transaction, source_id=source_id, stripe_amount=amount,
                         ours=ours)
            return
    check.matched += 1


def check_day(day: date) -> Check:
    """Compare `day`'s balance transactions with our records; what differs (nothing written
    but fees read for the first time). Raises PaymentProviderError when Stripe is away."""
    check = Check(day)
    start, end = midnight(day), midnight(day + ONE_DAY)
    window = list(stripe_api.list_balance_transactions(unix(start - NEIGHBOURS),
                                                      unix(end + NEIGHBOURS)))
    seen: set[str] = set()
    of_day: list[tuple[str, dict[str, Any], str | None, dict[str, Any]]] = []
    for transaction in window:
        source_id, source = source_of(transaction)
        for key in (source_id, source.get("payment_intent")):
            if isinstance(key, str):
                seen.add(key)
        if not unix(start) <= int(transaction["created"]) < unix(end):
            continue
        category = category_of(transaction)
        check.count(category, transaction)
        if category in MATCHED:
            of_day.append((category, transaction, source_id, source))
    found = records_for([(category, source_id, source)
                         for category, _, source_id, source in of_day if source_id])
    for category, transaction, source_id, _ in of_day:
        currency = str(transaction["currency"])
        ours = found.get((category, source_id)) if source_id else None
        if ours is None:
            check.differ(Difference.MISSING_OURS, category, currency,
                         f"Stripe's {category.replace('_', ' ')} {source_id} moved "
                         f"{format_money(int(transaction['amount']), currency)}; we have no "
                         "record of it.",
                         transaction=transaction, source_id=source_id,
                         stripe_amount=int(transaction["amount"]))
            continue
        assert source_id is not None
        _compare(check, category, transaction, source_id, ours)
    for ours, keys in records_of(day):
        if not seen.intersection(keys) and not _at_stripe(ours, keys):
            check.differ(Difference.MISSING_STRIPE, ours.category, ours.currency,
                         f"{ours.label} ({', '.join(keys)}) moved "
                         f"{format_money(ours.amount, ours.currency)} by our records; Stripe's "
                         "balance has no such transaction.",
                         source_id=keys[0], ours=ours)
    return check


def _at_stripe(ours: Ours, keys: tuple[str, ...]) -> bool:
    """Whether Stripe's balance has a transaction for a record of ours outside the window
    (a held payment reviewed days after its charge, say): asked by its source id."""
    source = keys[0]
    try:
        if ours.category == "charge" and not source.startswith("ch_"):
            return stripe_api.charge_balance_transaction(payment_intent_id=source) is not None
        return bool(stripe_api.balance_transactions_of(source))
    except stripe_api.PaymentProviderError as exc:
        if exc.unreached:
            raise
        return False  # Stripe knows no such object


def reconcile_day(day: date, *, actor: User | None = None) -> ReconciliationRun:
    """Check `day` and write the run (with what it found). Commits."""
    try:
        check = check_day(day)
    except stripe_api.PaymentProviderError as exc:
        db.session.rollback()
        run = ReconciliationRun(day=day, ran_by=actor, error=str(exc)[:500])
    else:
        run = ReconciliationRun(day=day, ran_by=actor, transactions=check.transactions,
                                matched=check.matched, totals=check.totals, items=check.items)
    db.session.add(run)
    db.session.flush()
    audit("books.reconciled", run, actor=actor, actor_label=None if actor else "system",
          after={"day": day.isoformat(), "transactions": run.transactions,
                 "differences": len(run.items), "error": run.error})
    db.session.commit()
    if run.items or run.error:
        log.warning("reconciliation of %s: %s differences%s", day, len(run.items),
                    f", {run.error}" if run.error else "")
    return run


def latest_runs(limit: int = 60) -> list[ReconciliationRun]:
    """The latest run of each day checked, newest day first."""
    newest = (select(ReconciliationRun.day, func.max(ReconciliationRun.id).label("id"))
              .group_by(ReconciliationRun.day).subquery())
    return list(db.session.scalars(
        select(ReconciliationRun).join(newest, newest.c.id == ReconciliationRun.id)
        .order_by(ReconciliationRun.day.desc()).limit(limit)))


def latest_run(day: date) -> ReconciliationRun | None:
    return db.session.scalar(select(ReconciliationRun).where(ReconciliationRun.day == day)
                             .order_by(ReconciliationRun.id.desc()).limit(1))


@jobs.periodic(jobs.daily_at(3, 20))
def reconcile_yesterday() -> None:
    """Each night, once yesterday is closed at Stripe too."""
    reconcile_day(clock.now().date() - ONE_DAY)
