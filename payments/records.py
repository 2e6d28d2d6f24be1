"""Payment records: finding them, and the one way to move one (its transition table)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import select

from contracts.models import Contract
from contracts.services import lock_contract
from database.locking import lock_by_id
from database.states import check_transition
from extensions import db
from payments.models import PAYMENT_RECORD_TRANSITIONS, Payment, PaymentRecordStatus

T = TypeVar("T")


def lock_with_contract(
    model: type[T], row_id: int, contract_id_of: Callable[[T], int] | None = None
) -> tuple[T, Contract]:
    """A money row and its contract, both locked until the transaction ends.

    The one lock order: the contract first, then the row (read fresh under it), so
    every path that changes a contract's money queues on the same lock and no two
    wait on each other. `contract_id_of` finds the contract of rows that do not name
    it (an instalment names its plan). Raises LookupError when the row is unknown.
    """
    known = db.session.get(model, row_id)
    if known is None:
        raise LookupError(f"no {model.__name__} {row_id}")
    contract_id = contract_id_of(known) if contract_id_of else known.contract_id  # type: ignore[attr-defined]
    contract = lock_contract(contract_id)
    row = lock_by_id(db.session, model, row_id)
    if contract is None or row is None:
        raise LookupError(f"no {model.__name__} {row_id}")
    return row, contract


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
