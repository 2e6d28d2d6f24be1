"""The coach's earning, one share per delivered session.

A contract's `coach_earning` is split over its `session_count` in equal shares
rounded down to the minor unit, the remainder on the last, so the shares add
up to the earning exactly (yen included). Share k belongs to the contract's
k-th delivered (completed or no-show) session, in the order the shares are
made and, among sessions found together, by start time. A share waits in its
hold (`PAYOUT_HOLD_DAYS` after the session was marked) before it is due.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, select

import clock
import jobs
from audit.services import record as audit
from contracts.models import CoachingSession, Contract, SessionStatus
from contracts.services import lock_contract
from database.locking import take_write_lock
from database.states import check_transition
from extensions import db
from payments.standing import split
from payouts.models import SHARE_TRANSITIONS, SessionShare, ShareStatus

DELIVERED = (SessionStatus.COMPLETED, SessionStatus.NO_SHOW)


def share_amount(contract: Contract, number: int) -> int:
    """What the contract's `number`-th delivered session earns its coach (1-based)."""
    return split(contract.coach_earning, contract.session_count)[number - 1]


def hold() -> timedelta:
    return timedelta(days=int(current_app.config["PAYOUT_HOLD_DAYS"]))


def move(share: SessionShare, status: ShareStatus) -> None:
    """The one way a share changes status: refused unless the table lists it."""
    share.status = check_transition(SHARE_TRANSITIONS, share.status, status, "session share")


# --- making shares --------------------------------------------------------------------


def contracts_with_unshared_sessions(limit: int = 500) -> list[int]:
    """Contracts with delivered sessions that have no share yet."""
    return list(
        db.session.scalars(
            select(CoachingSession.contract_id)
            .outerjoin(SessionShare, SessionShare.session_id == CoachingSession.id)
            .where(CoachingSession.status.in_(DELIVERED), SessionShare.id.is_(None))
            .group_by(CoachingSession.contract_id)
            .limit(limit)
        )
    )


def make_shares(contract_id: int) -> list[SessionShare]:
    """Write the shares of the contract's delivered sessions that lack one. Flushes.

    Under the contract's lock, so two jobs at once number the shares once.
    """
    contract = lock_contract(contract_id)
    if contract is None:
        return []
    made = db.session.scalar(
        select(func.count())
        .select_from(SessionShare)
        .where(SessionShare.contract_id == contract_id)
    ) or 0
    waiting = db.session.scalars(
        select(CoachingSession)
        .outerjoin(SessionShare, SessionShare.session_id == CoachingSession.id)
        .where(
            CoachingSession.contract_id == contract_id,
            CoachingSession.status.in_(DELIVERED),
            SessionShare.id.is_(None),
        )
        .order_by(CoachingSession.starts_at, CoachingSession.id)
    )
    shares: list[SessionShare] = []
    for session in waiting:
        number = made + len(shares) + 1
        if number > contract.session_count:
            break  # cannot happen while scheduling keeps to the allowance
        marked: datetime = session.marked_at or clock.now()
        share = SessionShare(
            session_id=session.id,
            contract_id=contract.id,
            coach_id=contract.coach_id,
            number=number,
            amount=share_amount(contract, number),
            currency=contract.currency,
            due_at=marked + hold(),
            next_attempt_at=marked + hold(),
        )
        db.session.add(share)
        shares.append(share)
    db.session.flush()
    for share in shares:
        audit(
            "payout.share_made",
            share,
            actor_label="system",
            after={"session_id": share.session_id, "amount": share.amount, "number": share.number},
        )
    return shares


def release_held() -> int:
    """Held shares whose hold is over become due; how many. Flushes."""
    released = 0
    take_write_lock(db.session)  # SQLite: read fresh rows nobody changes before we write
    for share in db.session.scalars(
        select(SessionShare)
        .where(SessionShare.status == ShareStatus.HELD, SessionShare.due_at <= clock.now())
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    ):
        move(share, ShareStatus.DUE)
        share.next_attempt_at = max(share.next_attempt_at, share.due_at)
        released += 1
    db.session.flush()
    return released


def shares_of_contract(contract_id: int) -> list[SessionShare]:
    return list(
        db.session.scalars(
            select(SessionShare)
            .where(SessionShare.contract_id == contract_id)
            .order_by(SessionShare.number)
        )
    )


def make_and_release() -> None:
    """A share for every delivered session without one; shares out of their hold become due.

    Commits per contract.
    """
    for contract_id in contracts_with_unshared_sessions():
        make_shares(contract_id)
        db.session.commit()
    release_held()
    db.session.commit()


@jobs.periodic(jobs.every_minute())
def make_session_shares() -> None:
    make_and_release()
