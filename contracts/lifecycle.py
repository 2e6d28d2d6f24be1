"""A contract's state changes. Every change of `status` or `payment_status` happens here.

Each function checks the transition tables, writes one audit entry and tells
the parties what concerns them. The caller holds the contract's row lock
(`contracts.services.lock_contract`) and commits; other packages (payments)
call these functions and never write the contract's columns themselves.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import url_for
from sqlalchemy import select

from accounts.models import User
from audit.services import record as audit
from clock import now
from contracts.models import (
    CONTRACT_TRANSITIONS,
    PAYMENT_STATUS_TRANSITIONS,
    SESSION_TRANSITIONS,
    CoachingSession,
    Contract,
    ContractStatus,
    PaymentStatus,
    SessionStatus,
    money_status,
)
from contracts.money import Received, format_money
from database.states import check_transition
from extensions import db
from notifications.services import notify


def _move(
    contract: Contract,
    action: str,
    *,
    status: ContractStatus | None = None,
    payment_status: PaymentStatus | None = None,
    actor: User | None = None,
    actor_label: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Move the contract along its tables (staying put is no move) and audit it."""
    before = {"status": contract.status.value, "payment_status": contract.payment_status.value}
    if status is not None and status is not contract.status:
        contract.status = check_transition(
            CONTRACT_TRANSITIONS, contract.status, status, "contract"
        )
    if payment_status is not None and payment_status is not contract.payment_status:
        contract.payment_status = check_transition(
            PAYMENT_STATUS_TRANSITIONS, contract.payment_status, payment_status, "payment"
        )
    if contract.id is None:
        db.session.flush()  # the audit entry names the contract by its id
    audit(
        action,
        contract,
        actor=actor,
        actor_label=actor_label,
        before=before,
        after={
            "status": contract.status.value,
            "payment_status": contract.payment_status.value,
            **(details or {}),
        },
    )


def _link(contract: Contract) -> str:
    return url_for("contracts.detail", contract_id=contract.id)


def tell_parties(contract: Contract, message: str, *, subject: str | None = None) -> None:
    """Tell the coach and the student the same thing, with a link to the contract."""
    for party in (contract.coach, contract.student):
        notify(party, message, link=_link(contract), subject=subject)


def _record_money(
    contract: Contract, received: Received, *, deciding_dispute: bool = False
) -> PaymentStatus | None:
    """Copy the money core's figures onto the contract; the payment status they give.

    A contract under dispute keeps `disputed` until the dispute is decided.
    """
    contract.amount_paid = received.arrived
    contract.amount_waived = received.waived
    contract.amount_returned = received.returned
    if contract.status is ContractStatus.DISPUTED and not deciding_dispute:
        return None
    return money_status(
        contract.total_amount, received.arrived, received.waived, received.returned
    )


def mark_paid(
    contract: Contract,
    *,
    paid_at: datetime,
    details: dict[str, Any],
    actor: User | None = None,
    actor_label: str | None = None,
    amount: int | None = None,
    received: Received | None = None,
) -> None:
    """Money for the contract arrived: `amount` (the total by default), a plan's deposit
    or instalment. `received` is where the contract's money now stands, as the money
    core counts it (`payments.settle`); without it (a contract with no payment records,
    in tests and benchmarks) `amount` is added to what the contract holds.

    The contract is active (a past-due one again); paid once all of it arrived or was
    written off, else partially paid, with sessions unlocked in proportion. Both
    parties are told. `actor` is the admin who recorded or accepted the payment;
    Stripe's own payments have only an `actor_label`.
    """
    amount = contract.total_amount if amount is None else amount
    first = contract.paid_at is None
    if received is None:
        received = Received(
            (contract.amount_paid or 0) + amount,
            contract.amount_waived or 0,
            contract.amount_returned or 0,
        )
    payment_status = _record_money(contract, received)
    whole = received.arrived + received.waived >= contract.total_amount
    status = (
        ContractStatus.ACTIVE
        if contract.status in (ContractStatus.PENDING, ContractStatus.PAST_DUE)
        else None
    )
    _move(
        contract,
        "contract.paid" if whole and first else "contract.payment_received",
        status=status,
        payment_status=payment_status,
        actor=actor,
        actor_label=actor_label,
        details={
            "amount": amount,
            "amount_paid": contract.amount_paid,
            **({"amount_waived": received.waived} if received.waived else {}),
            **details,
        },
    )
    if first:
        contract.paid_at = paid_at
    money = format_money(amount, contract.currency)
    unlocked = (
        "You can schedule sessions now."
        if whole
        else f"{contract.sessions_unlocked} of {contract.session_count} sessions can be "
        "scheduled now."
    )
    notify(
        contract.coach,
        f"{contract.student.name} paid {money} for “{contract.title}”. {unlocked}",
        link=_link(contract),
        subject=f"Coachpact: “{contract.title}” is paid"
        if whole
        else f"Coachpact: a payment for “{contract.title}”",
    )
    notify(
        contract.student,
        f"Your payment of {money} for “{contract.title}” is confirmed. "
        + (
            f"You can book your sessions with {contract.coach.name} now."
            if whole
            else unlocked
        ),
        link=_link(contract),
        subject=f"Coachpact: your payment for “{contract.title}” is confirmed",
    )


def mark_past_due(contract: Contract, *, reason: str) -> None:
    """An instalment stayed unpaid after its retries: scheduling pauses; both are told."""
    if contract.status is not ContractStatus.ACTIVE:
        return
    _move(
        contract,
        "contract.past_due",
        status=ContractStatus.PAST_DUE,
        actor_label="system",
        details={"reason": reason},
    )
    tell_parties(
        contract,
        f"An instalment of “{contract.title}” is overdue ({reason}). Scheduling is paused "
        "until it is paid.",
        subject=f"Coachpact: an instalment of “{contract.title}” is overdue",
    )


def mark_payment_processing(contract: Contract, *, actor_label: str) -> None:
    """A bank debit for an unpaid contract is on its way: no second payment is offered."""
    if contract.paid_at is None and contract.payment_status is not PaymentStatus.PROCESSING:
        _move(
            contract,
            "contract.payment_processing",
            payment_status=PaymentStatus.PROCESSING,
            actor_label=actor_label,
        )


def mark_payment_failed(contract: Contract, *, actor_label: str, reason: str) -> bool:
    """An attempt to pay an unpaid contract failed; False when the contract is paid already."""
    if contract.paid_at is not None:
        return False
    _move(
        contract,
        "contract.payment_failed",
        payment_status=PaymentStatus.FAILED,
        actor_label=actor_label,
        details={"reason": reason},
    )
    return True


def record_refund(
    contract: Contract,
    *,
    received: Received,
    consumed_sessions: int,
    actor_label: str,
    actor: User | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Money went back to the student: `received.returned` is all that went back so far.

    Everything given back closes the contract (refunded) and its sessions. Less
    releases the sessions it paid for (`_fit_sessions`). A contract whose payment is
    disputed keeps that status (the dispute decides); the refund is still recorded
    and audited. Both parties are told by the caller.
    """
    payment_status = _record_money(contract, received)
    everything = received.returned >= received.arrived
    status = (
        ContractStatus.REFUNDED
        if everything
        and contract.status is not ContractStatus.DISPUTED
        and ContractStatus.REFUNDED in CONTRACT_TRANSITIONS.get(contract.status, ())
        else None
    )
    _release_sessions(contract, received, consumed_sessions)
    _move(
        contract,
        "contract.refund_recorded",
        status=status,
        payment_status=payment_status,
        actor=actor,
        actor_label=actor_label,
        details={
            "refunded_total": received.returned,
            "sessions_released": contract.sessions_released,
            **(details or {}),
        },
    )
    _fit_sessions(contract, consumed_sessions, "a refund gave these sessions back.")


def _release_sessions(contract: Contract, received: Received, consumed: int) -> None:
    """Sessions given back by what was returned: all of them when nothing is kept, else
    the whole sessions the returned money paid for, never one already used."""
    if received.returned >= received.arrived:
        released = contract.session_count
    else:
        excess = max(received.arrived + received.waived - contract.total_amount, 0)
        returned = max(received.returned - excess, 0)
        released = min(
            returned // contract.price_per_session, contract.session_count - consumed
        )
    contract.sessions_released = max(contract.sessions_released, released, 0)


def _fit_sessions(contract: Contract, consumed: int, reason: str) -> None:
    """Cancel the scheduled sessions the money kept no longer pays for; a contract with
    nothing left to use is completed. All of the money given back frees every session,
    under a dispute too: the dispute decides the money, but no session is left paid for."""
    if (contract.status is ContractStatus.REFUNDED
            or contract.sessions_released >= contract.session_count):
        cancel_open_sessions(contract, "the contract was refunded in full.")
    elif contract.status is ContractStatus.ACTIVE:
        cancel_open_sessions(contract, reason, keep=contract.sessions_unlocked - consumed)
        if contract.session_allowance - consumed <= 0 and consumed:
            complete(contract)


def open_dispute(contract: Contract, *, actor_label: str, details: dict[str, Any]) -> bool:
    """The student's bank opened a dispute; False when one is open already.

    Scheduling closes until it is decided; both parties are told.
    """
    if contract.status is ContractStatus.DISPUTED:
        return False
    _move(
        contract,
        "contract.disputed",
        status=ContractStatus.DISPUTED,
        payment_status=PaymentStatus.DISPUTED,
        actor_label=actor_label,
        details=details,
    )
    tell_parties(
        contract,
        f"The student's bank opened a dispute on the payment for “{contract.title}”. "
        "Scheduling is paused until it is decided.",
        subject=f"Coachpact: a dispute on “{contract.title}”",
    )
    return True


def close_dispute(
    contract: Contract,
    *,
    won: bool,
    status_before: ContractStatus,
    received: Received,
    consumed_sessions: int,
    actor_label: str,
    details: dict[str, Any],
    still_disputed: bool = False,
) -> None:
    """A dispute was decided. The contract returns to where it was before it, with the
    payment status its money now gives (refunds made meanwhile and, when lost, the
    disputed amount count as given back). Nothing kept any more: it is refunded and
    its open sessions cancelled. Both parties are told.

    While another dispute on the contract is still open (`still_disputed`), the money is
    recorded and the contract stays disputed until that one is decided too.
    """
    if contract.status is not ContractStatus.DISPUTED:
        return
    if still_disputed:
        _record_money(contract, received)
        _release_sessions(contract, received, consumed_sessions)
        tell_parties(
            contract,
            f"One of the disputes on “{contract.title}” was decided; another is still "
            "open, so scheduling stays paused until it is decided too.",
        )
        return
    payment_status = _record_money(contract, received, deciding_dispute=True)
    everything = received.returned >= received.arrived
    status = ContractStatus.REFUNDED if everything else status_before
    _release_sessions(contract, received, consumed_sessions)
    _move(
        contract,
        "contract.dispute_won" if won else "contract.dispute_lost",
        status=status,
        payment_status=payment_status,
        actor_label=actor_label,
        details=details,
    )
    _fit_sessions(contract, consumed_sessions, "the bank returned part of the payment.")
    if won:
        message = (
            f"The dispute on “{contract.title}” was decided in the coach's favour; "
            "the contract is as it was before."
        )
    elif everything:
        message = (
            f"The dispute on “{contract.title}” was decided in the student's favour; "
            "the bank returned the payment and the contract is closed."
        )
    else:
        message = (
            f"The dispute on “{contract.title}” was decided in the student's favour; "
            "the bank returned the disputed payment, and the rest of the contract stands."
        )
    tell_parties(contract, message)


def cancel_paid(contract: Contract, *, by: User, reason: str) -> None:
    """An admin (or a membership's coach, ending it) ends an active, paid contract; the
    refund follows through payments.

    Its open sessions are cancelled; both parties are told.
    """
    _move(
        contract,
        "contract.cancelled",
        status=ContractStatus.CANCELLED,
        actor=by,
        details={"reason": reason, "paid": True},
    )
    cancel_open_sessions(contract, "the contract was cancelled.")
    who = "An administrator" if by.is_admin else by.name
    tell_parties(contract, f"{who} cancelled “{contract.title}”: {reason}")


def complete(contract: Contract, *, why: str | None = None) -> None:
    """Every session is used and none is open (or, `why`, a membership's period is over):
    the contract is completed; both are told."""
    _move(contract, "contract.completed", status=ContractStatus.COMPLETED, actor_label="system")
    tell_parties(
        contract, why or f"All sessions of “{contract.title}” are done; the contract is completed."
    )


def cancel(contract: Contract, *, by: User, reason: str) -> None:
    """Call off a contract that was never paid; the other party is told."""
    if contract.paid_at is not None:
        raise ValueError("a paid contract is closed by a refund, not cancelled")
    _move(
        contract,
        "contract.cancelled",
        status=ContractStatus.CANCELLED,
        actor=by,
        details={"reason": reason},
    )
    other = contract.student if by.id == contract.coach_id else contract.coach
    notify(
        other,
        f"{by.name} cancelled the unpaid contract “{contract.title}”: {reason}",
        link=_link(contract),
    )


def cancel_open_sessions(
    contract: Contract, reason: str, *, keep: int = 0, starting_from: datetime | None = None
) -> int:
    """Cancel the scheduled sessions of a contract beyond the first `keep` (by start), or
    those starting at `starting_from` or later.

    For a contract that closed (a full refund, keep none), that a partial refund left
    with fewer sessions, or a membership's period when the membership ended. None of
    them counts as used; both parties are told once. The caller holds the contract's
    lock. Returns how many were cancelled.
    """
    moment = now()
    query = select(CoachingSession).where(
        CoachingSession.contract_id == contract.id,
        CoachingSession.status == SessionStatus.SCHEDULED,
    )
    if starting_from is not None:
        query = query.where(CoachingSession.starts_at >= starting_from)
    open_sessions = list(
        db.session.scalars(query.order_by(CoachingSession.starts_at, CoachingSession.id))
    )[max(keep, 0) :]
    for booked in open_sessions:
        booked.status = check_transition(
            SESSION_TRANSITIONS, booked.status, SessionStatus.CANCELLED, "session"
        )
        booked.cancelled_at = moment
    if open_sessions:
        db.session.flush()
        audit(
            "contract.sessions_cancelled",
            contract,
            actor_label="system",
            after={"count": len(open_sessions), "reason": reason},
        )
        tell_parties(
            contract,
            f"{len(open_sessions)} scheduled session(s) of “{contract.title}” were "
            f"cancelled: {reason}",
        )
    return len(open_sessions)
