"""Slot holds: the first session's time kept for a contract while its student pays.

A student paying a pending contract may pick the first session's time on the pay page.
The time is held for that payment attempt (the Checkout claim) for exactly as long as
its Checkout Session can be paid; meanwhile the coach's calendar shows it taken to
everyone else (`scheduling.availability`). The payment then decides:

- paid while the hold lives, or later while the time is still free: the session is
  booked in the transaction that settles the payment (`book_paid_hold`);
- paid later, after the time was taken: the hold lapses, the contract is active all the
  same, and the student is told to choose another time;
- the session expired, or the student cancelled or picked another time: the hold is
  released at once (`release_for_payment`, `release_others`).

Holding takes booking's locks in booking's order (the contract, then its coach and
student), so a hold and a booking, or two holds, of one coach are decided one after the
other. The callers (payments) hold the contract's lock already; services flush.
"""

from __future__ import annotations

from datetime import datetime

from flask import url_for
from sqlalchemy import select

from accounts.timezones import SESSION_FORMAT, format_local
from audit.services import record as audit
from clock import now
from contracts.models import Contract, ContractStatus
from database.states import check_transition
from extensions import db
from notifications.services import notify
from scheduling import sessions
from scheduling.models import HOLD_TRANSITIONS, HoldStatus, SlotHold
from scheduling.sessions import SchedulingError

__all__ = [
    "HoldStatus",
    "SchedulingError",
    "SlotHold",
    "book_paid_hold",
    "hold_of_payment",
    "hold_slot",
    "lapsed_hold",
    "live_hold_of",
    "release_for_payment",
    "release_others",
    "set_expiry",
]


def _holds(*criteria: object) -> list[SlotHold]:
    return list(
        db.session.scalars(
            select(SlotHold)
            .where(*criteria)  # type: ignore[arg-type]
            .order_by(SlotHold.id.desc())
            .execution_options(populate_existing=True)
        )
    )


def live_hold_of(contract: Contract, moment: datetime | None = None) -> SlotHold | None:
    """The contract's live hold (the newest, if an earlier one has not been released)."""
    moment = moment or now()
    found = _holds(SlotHold.contract_id == contract.id, SlotHold.status == HoldStatus.HELD)
    return next((hold for hold in found if hold.is_live(moment)), None)


def hold_of_payment(payment_id: int) -> SlotHold | None:
    """The hold a payment attempt was made for (its newest), if any."""
    found = _holds(SlotHold.payment_id == payment_id)
    return found[0] if found else None


def lapsed_hold(contract: Contract) -> SlotHold | None:
    """The contract's last hold, when its time could not be booked after the payment
    (taken meanwhile, or nothing unlocked): the contract page asks for another time."""
    found = _holds(SlotHold.contract_id == contract.id)
    if not found or found[0].ended_because not in ("taken", "nothing_unlocked"):
        return None
    return found[0]


def hold_slot(
    contract: Contract, payment_id: int, starts_at: datetime, expires_at: datetime
) -> SlotHold:
    """Hold `starts_at` for the first session of `contract` (its lock held by the caller)
    until `expires_at`, for the payment attempt `payment_id`.

    Refuses (SchedulingError, nothing written) a contract that is not pending or has a
    session booked already, and a time that is not free for the coach: their hours,
    notice, horizon and days off, scheduled sessions of either party, and other
    contracts' live holds. The attempt's own live hold of the same time is kept.
    """
    sessions.lock_parties(contract)
    if contract.status is not ContractStatus.PENDING:
        raise SchedulingError(f"This contract is {contract.status.value}; no time is held for it.")
    if sessions.has_scheduled_session(contract):
        raise SchedulingError(
            "A session of this contract is booked already; pay without picking a time."
        )
    moment = now()
    existing = hold_of_payment(payment_id)
    if existing is not None and existing.is_live(moment) and existing.starts_at == starts_at:
        return existing
    sessions.check_free(contract, starts_at)
    if existing is not None and existing.status is HoldStatus.HELD:
        _end(existing, HoldStatus.RELEASED, "replaced")
    hold = SlotHold(
        coach_id=contract.coach_id,
        contract_id=contract.id,
        payment_id=payment_id,
        starts_at=starts_at,
        ends_at=starts_at + sessions.session_length(contract),
        expires_at=expires_at,
    )
    db.session.add(hold)
    db.session.flush()
    audit(
        "hold.placed",
        hold,
        actor=contract.student,
        after={"contract_id": contract.id, "payment_id": payment_id,
               "starts_at": starts_at.isoformat(), "expires_at": expires_at.isoformat()},
    )
    return hold


def set_expiry(payment_id: int, expires_at: datetime) -> None:
    """The attempt's Checkout Session is recorded: its hold lives exactly as long."""
    hold = hold_of_payment(payment_id)
    if hold is not None and hold.status is HoldStatus.HELD and hold.expires_at != expires_at:
        hold.expires_at = expires_at
        db.session.flush()


def release_others(contract: Contract, keep_payment_id: int | None, because: str) -> list[int]:
    """Release the contract's held holds but the one of `keep_payment_id`; the payment
    attempts they were for (whose sessions the caller expires at Stripe, outside the lock)."""
    released = []
    for hold in _holds(SlotHold.contract_id == contract.id, SlotHold.status == HoldStatus.HELD):
        if hold.payment_id != keep_payment_id:
            _end(hold, HoldStatus.RELEASED, because)
            released.append(hold.payment_id)
    return released


def release_for_payment(payment_id: int, because: str) -> SlotHold | None:
    """Release the hold of a payment attempt whose session can no longer be paid (expired,
    cancelled); the hold, or None when it had none held."""
    hold = hold_of_payment(payment_id)
    if hold is None or hold.status is not HoldStatus.HELD:
        return None
    _end(hold, HoldStatus.RELEASED, because)
    return hold


def _end(hold: SlotHold, status: HoldStatus, because: str) -> None:
    before = hold.status
    hold.status = check_transition(HOLD_TRANSITIONS, hold.status, status, "hold")
    hold.ended_because = because
    db.session.flush()
    audit(
        f"hold.{status.value}",
        hold,
        actor_label="system",
        before={"status": before.value},
        after={"status": status.value, "because": because,
               **({"session_id": hold.session_id} if hold.session_id else {})},
    )


def book_paid_hold(contract: Contract, payment_id: int) -> str | None:
    """The payment attempt `payment_id` just made `contract` active (its lock held by the
    caller, in the transaction that settles the payment): book the time it held.

    Booked when the hold still lives, or when it ended but the time is still free; else
    the hold lapses and the student is told to choose another time. A payment that
    unlocks no session yet (a small plan deposit) books nothing and says so. Other holds
    of the contract are released. What happened, in a word; None when nothing was held.
    Settling a payment happens once, so a time is booked once.
    """
    hold = hold_of_payment(payment_id)
    if hold is None or hold.status not in (HoldStatus.HELD, HoldStatus.RELEASED):
        return None
    promised = hold.is_live(now())
    release_others(contract, payment_id, "paid_elsewhere")
    student = contract.student
    when = format_local(hold.starts_at, student.timezone, SESSION_FORMAT)
    book_link = url_for("sessions.book", contract_id=contract.id)
    if contract.sessions_unlocked == 0:
        _end(hold, HoldStatus.RELEASED, "nothing_unlocked")
        notify(
            student,
            f"Your deposit for “{contract.title}” is paid, but it does not unlock a whole "
            f"session yet, so {when} was not booked. You can book your first session once "
            "the next instalment is paid.",
            link=url_for("contracts.detail", contract_id=contract.id),
            subject=f"Coachpact: {when} was not booked",
        )
        return "hold_not_unlocked"
    try:
        booked = sessions.book_held_session(contract, hold.starts_at, promised=promised)
    except SchedulingError:
        _end(hold, HoldStatus.LAPSED, "taken")
        notify(
            student,
            f"Your payment for “{contract.title}” arrived after the time you picked, {when}, "
            "stopped being held, and that time has been taken since. Your contract is active "
            "and nothing else changes: choose another time for your first session.",
            link=book_link,
            subject=f"Coachpact: choose another time for “{contract.title}”",
        )
        return "hold_lapsed"
    hold.session_id = booked.id
    _end(hold, HoldStatus.BOOKED, "paid")
    return "hold_booked"
