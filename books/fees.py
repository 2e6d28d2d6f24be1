"""Stripe's fee on each payment, read from its charge's balance transaction.

Stripe knows its fee once the charge has a balance transaction; a sweep reads it for
payments that count and have none yet (a few minutes after they were paid), and the
daily reconciliation fills in any it meets. The fee, the balance transaction's id and
when the money is available are kept on the payment.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update

import clock
import jobs
from extensions import db
from payments import stripe_api
from payments.models import Payment
from payments.standing import PAID_STATUSES

log = logging.getLogger(__name__)

# Stripe attaches the balance transaction as the charge succeeds; a little later is safe.
READ_AFTER = timedelta(minutes=2)
BATCH = 200


def from_unix(seconds: int | None) -> datetime | None:
    return datetime.fromtimestamp(seconds, UTC) if seconds is not None else None


def keep_fee(payment_id: int, transaction: dict[str, Any], charge_id: str | None) -> None:
    """Store what a charge's balance transaction says on its payment (flushes).

    An UPDATE of these columns alone: it never overwrites what another transaction
    changed on the payment meanwhile.
    """
    db.session.execute(update(Payment).where(Payment.id == payment_id).values(
        stripe_fee=int(transaction["fee"]),
        balance_transaction_id=transaction["id"],
        available_on=from_unix(transaction.get("available_on")),
        charge_id=func.coalesce(Payment.charge_id, charge_id),
    ))


def fee_unknown_ids(limit: int = BATCH) -> list[int]:
    """Stripe payments that count (or arrived and went back) with no fee read yet."""
    return list(db.session.scalars(
        select(Payment.id)
        .where(Payment.stripe_fee.is_(None), Payment.payment_intent_id.is_not(None),
               Payment.manual_method.is_(None), Payment.status.in_(PAID_STATUSES),
               Payment.fee_refused_at.is_(None),
               Payment.paid_at <= clock.now() - READ_AFTER)
        .order_by(Payment.id)
        .limit(limit)
    ))


def read_fees(limit: int = BATCH) -> int:
    """Read Stripe's fee of payments that lack it; how many were read. Commits each.

    A payment Stripe says it does not know (a record from another Stripe account, or
    made up by hand) is marked so and not asked again; the reconciliation reports it.
    """
    read = 0
    for payment_id in fee_unknown_ids(limit):
        payment = db.session.get(Payment, payment_id)
        assert payment is not None and payment.payment_intent_id is not None
        intent_id = payment.payment_intent_id
        db.session.rollback()  # no transaction held while Stripe answers
        try:
            transaction = stripe_api.charge_balance_transaction(payment_intent_id=intent_id)
        except stripe_api.PaymentProviderError as exc:
            if exc.unreached:
                log.warning("fees not read, Stripe not reached: %s", exc)
                break  # the next run tries again
            log.info("fee of payment %s refused by Stripe: %s", payment_id, exc)
            db.session.execute(update(Payment).where(Payment.id == payment_id)
                               .values(fee_refused_at=clock.now()))
            db.session.commit()
            continue
        if transaction is None:
            continue
        keep_fee(payment_id, transaction, transaction.get("charge"))
        db.session.commit()
        read += 1
    return read


@jobs.periodic(jobs.every_minutes(10))
def read_fees_job() -> None:
    """Every ten minutes: the fees of payments paid since."""
    read = read_fees()
    if read:
        log.info("read Stripe's fee of %s payments", read)
