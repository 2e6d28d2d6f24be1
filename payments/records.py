"""Payment records: finding them, and the one way to move one (its transition table)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from contracts.models import Contract
from contracts.states import check_transition
from extensions import db
from payments.models import PAYMENT_RECORD_TRANSITIONS, Payment, PaymentRecordStatus


def transfer_group(contract_id: int) -> str:
    """Stripe's transfer group of a contract: its charges and the coach's transfers."""
    return f"contract-{contract_id}"


def payment_by(**criteria: Any) -> Payment | None:
    """The payment matching `criteria` (column=value), read fresh from the database."""
    return db.session.scalar(
        select(Payment).filter_by(**criteria).execution_options(populate_existing=True)
    )


def payments_of(contract: Contract) -> list[Payment]:
    """A contract's payment attempts, newest first."""
    return list(
        db.session.scalars(
            select(Payment)
            .where(Payment.contract_id == contract.id)
            .order_by(Payment.created_at.desc(), Payment.id.desc())
        )
    )


def may_move(payment: Payment, status: PaymentRecordStatus) -> bool:
    """Whether the table lets `payment` move to `status`.

    False for a late or reordered event: the record already knows better.
    """
    return status is not payment.status and status in PAYMENT_RECORD_TRANSITIONS.get(
        payment.status, frozenset()
    )


def move(payment: Payment, status: PaymentRecordStatus) -> None:
    """Move `payment` to `status`; a move the table does not list raises TransitionError."""
    payment.status = check_transition(PAYMENT_RECORD_TRANSITIONS, payment.status, status, "payment")


def move_if_allowed(payment: Payment, status: PaymentRecordStatus) -> bool:
    """Move `payment` when the table allows it; False (nothing changed) for a stale event."""
    if not may_move(payment, status):
        return False
    move(payment, status)
    return True
