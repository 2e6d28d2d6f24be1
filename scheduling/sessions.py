"""Coaching sessions: the scheduling gate, booking, rescheduling, cancelling and marking.

Services flush; the request commits once. Every rule that depends on other
sessions (the count, a coach's overlaps) is checked under row locks taken in
one order, contract then coach then student (then the session being changed), so
two simultaneous bookings, or a booking and a reschedule, are decided one after
the other by the database, never both allowed. The coach's calendar (working
hours, days off, notice and horizon) is `scheduling.availability`'s.

"Now" is `clock.now()`, read at call time, so a test moves the clock in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app, url_for
from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from accounts.models import User
from accounts.timezones import SESSION_FORMAT, format_local
from audit.services import record as audit
from clock import now
from contracts import lifecycle
from contracts.models import (
    SESSION_TRANSITIONS,
    CoachingSession,
    Contract,
    ContractStatus,
    PaymentStatus,
    SessionStatus,
)
from contracts.services import NotAllowed, lock_contract, party_filter
from database.locking import lock_by_id
from database.paging import page_number
from database.states import check_transition
from errors import NotFound
from extensions import db
from notifications.services import notify
from scheduling import availability

GRID_MINUTES = 15


class SchedulingError(Exception):
    """A booking or change refused by a rule; the message is for the user."""


class SchedulingClosed(Exception):
    """Scheduling is not open on `contract`; the message says why.

    `pay_first` is set when paying would open it (the contract is pending).
    """

    def __init__(self, message: str, contract: Contract, *, pay_first: bool = False) -> None:
        super().__init__(message)
        self.contract = contract
        self.pay_first = pay_first


_CLOSED_BECAUSE = {
    ContractStatus.COMPLETED: "Every session of this contract has taken place; "
    "the contract is completed.",
    ContractStatus.CANCELLED: "This contract was cancelled, so no sessions can be scheduled.",
    ContractStatus.REFUNDED: "This contract was refunded, so its sessions are closed.",
    ContractStatus.DISPUTED: "A payment dispute is open on this contract; scheduling is "
    "closed until it is resolved.",
    ContractStatus.PAST_DUE: "An instalment of this contract is overdue; scheduling resumes "
    "once it is paid.",
}


def check_scheduling_open(contract: Contract) -> None:
    """The gate: only an active, paid contract can have sessions scheduled or changed.

    A partial refund leaves the contract active with fewer sessions to use
    (`Contract.session_allowance`).
    """
    if contract.status is ContractStatus.ACTIVE and contract.payment_status in (
        PaymentStatus.PAID,
        PaymentStatus.PARTIALLY_PAID,
        PaymentStatus.PARTIALLY_REFUNDED,
    ):
        return
    if contract.payment_status is PaymentStatus.PROCESSING:
        raise SchedulingClosed(
            "The payment is on its way (a bank debit takes a few days); sessions can be "
            "scheduled once it arrives.",
            contract,
        )
    if contract.status is ContractStatus.PENDING:
        raise SchedulingClosed(
            "Sessions can be scheduled once this contract is paid.", contract, pay_first=True
        )
    raise SchedulingClosed(
        _CLOSED_BECAUSE.get(contract.status, "Scheduling is closed on this contract."), contract
    )


def scheduling_closed_reason(contract: Contract) -> str | None:
    """Why scheduling is closed on `contract`, or None when it is open (for pages)."""
    try:
        check_scheduling_open(contract)
    except SchedulingClosed as exc:
        return str(exc)
    return None


# --- reading -------------------------------------------------------------------


def sessions_of_contract(contract: Contract) -> list[CoachingSession]:
    return list(
        db.session.scalars(
            select(CoachingSession)
            .where(CoachingSession.contract_id == contract.id)
            .order_by(CoachingSession.starts_at, CoachingSession.id)
        )
    )


def used_count(
    contract_id: int, *, starting_from: datetime | None = None, moving: int | None = None
) -> int:
    """Sessions that use up the contract's count: all but the freely cancelled ones (those
    starting at `starting_from` or later, when given), but the one `moving`."""
    query = (
        select(func.count())
        .select_from(CoachingSession)
        .where(
            CoachingSession.contract_id == contract_id,
            or_(
                CoachingSession.status != SessionStatus.CANCELLED,
                CoachingSession.late_cancellation.is_(True),
            ),
        )
    )
    if starting_from is not None:
        query = query.where(CoachingSession.starts_at >= starting_from)
    if moving is not None:
        query = query.where(CoachingSession.id != moving)
    return db.session.scalar(query) or 0


def consumed_count(contract_id: int) -> int:
    """Sessions already used for good: completed, no-show, or cancelled late.

    Unlike `used_count`, sessions still scheduled are not counted: a refund can
    still give them back (`contracts.refund_policy`).
    """
    return (
        db.session.scalar(
            select(func.count())
            .select_from(CoachingSession)
            .where(
                CoachingSession.contract_id == contract_id,
                or_(
                    CoachingSession.status.in_([SessionStatus.COMPLETED, SessionStatus.NO_SHOW]),
                    CoachingSession.late_cancellation.is_(True),
                ),
            )
        )
        or 0
    )


def remaining_count(contract: Contract, sessions: list[CoachingSession]) -> int:
    """Sessions left to book, from the contract's sessions as already loaded."""
    used = sum(1 for booked in sessions if booked.counts_as_used)
    return max(contract.sessions_unlocked - used, 0)


@dataclass(frozen=True)
class Agenda:
    """A list of sessions split the way pages show them."""

    upcoming: list[CoachingSession]  # scheduled, not started yet
    to_mark: list[CoachingSession]  # scheduled, started: waiting for the coach's mark
    past: list[CoachingSession]  # completed, no-show or cancelled, newest first


def agenda(sessions: list[CoachingSession]) -> Agenda:
    moment = now()
    scheduled = [s for s in sessions if s.status is SessionStatus.SCHEDULED]
    return Agenda(
        upcoming=[s for s in scheduled if s.starts_at > moment],
        to_mark=[s for s in scheduled if s.starts_at <= moment],
        past=sorted(
            (s for s in sessions if s.status is not SessionStatus.SCHEDULED),
            key=lambda s: s.starts_at,
            reverse=True,
        ),
    )


SCHEDULE_TABS = {
    "upcoming": "Upcoming",
    "to-mark": "To mark",
    "past": "Past",
}
SCHEDULE_PAGE_SIZE = 20


def _tab_filter(tab: str, moment: datetime) -> ColumnElement[bool]:
    scheduled = CoachingSession.status == SessionStatus.SCHEDULED
    if tab == "upcoming":
        return and_(scheduled, CoachingSession.starts_at > moment)
    if tab == "to-mark":
        return and_(scheduled, CoachingSession.starts_at <= moment)
    return CoachingSession.status != SessionStatus.SCHEDULED


@dataclass(frozen=True)
class SchedulePage:
    """One page of one tab of a user's sessions across their contracts."""

    tab: str
    sessions: list[CoachingSession]
    page: int
    has_next: bool
    counts: dict[str, int]  # sessions per tab
    to_mark: list[CoachingSession]  # shown above the upcoming ones (first page's worth)


def schedule_page(user: User, tab: str, page: int = 1) -> SchedulePage:
    """`user`'s sessions on one tab: upcoming and to mark soonest first, past newest first.

    Offset paging, SCHEDULE_PAGE_SIZE a page; one row more is read to know whether a
    next page exists.
    """
    tab = tab if tab in SCHEDULE_TABS else "upcoming"
    page = page_number(page)
    moment = now()
    counts_row = db.session.execute(
        select(
            *(
                func.count(CoachingSession.id).filter(_tab_filter(name, moment))
                for name in SCHEDULE_TABS
            )
        )
        .select_from(CoachingSession)
        .join(Contract, CoachingSession.contract_id == Contract.id)
        .where(party_filter(Contract, user))
    ).one()

    def listed(name: str, offset: int, limit: int) -> list[CoachingSession]:
        order = (
            (CoachingSession.starts_at.desc(), CoachingSession.id.desc())
            if name == "past"
            else (CoachingSession.starts_at, CoachingSession.id)
        )
        return list(
            db.session.scalars(
                select(CoachingSession)
                .join(Contract, CoachingSession.contract_id == Contract.id)
                .where(party_filter(Contract, user), _tab_filter(name, moment))
                .options(
                    joinedload(CoachingSession.contract).joinedload(Contract.coach),
                    joinedload(CoachingSession.contract).joinedload(Contract.student),
                )
                .order_by(*order)
                .offset(offset)
                .limit(limit)
            )
        )

    rows = listed(tab, (page - 1) * SCHEDULE_PAGE_SIZE, SCHEDULE_PAGE_SIZE + 1)
    to_mark = listed("to-mark", 0, SCHEDULE_PAGE_SIZE) if tab == "upcoming" else []
    return SchedulePage(
        tab=tab,
        sessions=rows[:SCHEDULE_PAGE_SIZE],
        page=page,
        has_next=len(rows) > SCHEDULE_PAGE_SIZE,
        counts=dict(zip(SCHEDULE_TABS, counts_row, strict=True)),
        to_mark=to_mark,
    )


def session_for_party(session_id: int, user: User, *, lock: bool = False) -> CoachingSession:
    """The session if `user` is a party to its contract; anyone else gets a 404.

    With `lock`, the contract's row is locked first (the order every scheduling
    write uses) and then the session's, both read fresh.
    """
    found = db.session.scalar(
        select(CoachingSession)
        .join(Contract, CoachingSession.contract_id == Contract.id)
        .where(CoachingSession.id == session_id, party_filter(Contract, user))
    )
    if found is None:
        raise NotFound()
    if lock:
        lock_contract(found.contract_id)
        lock_by_id(db.session, CoachingSession, session_id)
    return found


def _lock_users(*user_ids: int) -> None:
    # Coach before student (callers pass them so): the same order in every
    # transaction, so two bookings can wait for each other but never deadlock.
    for user_id in user_ids:
        db.session.execute(select(User.id).where(User.id == user_id).with_for_update())


# --- booking -------------------------------------------------------------------


def _check_time(contract: Contract, starts_at: datetime) -> None:
    """The start itself: on the quarter hour, in the future, and free on the coach's calendar."""
    if starts_at.second or starts_at.microsecond or starts_at.minute % GRID_MINUTES:
        raise SchedulingError("Sessions start on the quarter hour (:00, :15, :30 or :45).")
    if starts_at <= now():
        raise SchedulingError("That time has passed. Pick a time in the future.")
    refused = availability.refusal(contract, starts_at)
    if refused:
        raise SchedulingError(refused)


def _check_count(contract: Contract) -> None:
    used = used_count(contract.id)
    if used >= contract.sessions_unlocked and used < contract.session_allowance:
        raise SchedulingError(
            f"The {contract.sessions_unlocked} sessions paid for so far are booked or used; "
            "the next one opens when the next instalment is paid."
        )
    if used >= contract.session_allowance:
        raise SchedulingError(
            f"All {contract.session_allowance} sessions of this contract are booked or used."
        )


def _check_rollover(contract: Contract, starts_at: datetime, moving: int | None = None) -> None:
    """A membership period's sessions after its end are its rolled-over credits: no more."""
    if contract.period_end is None or starts_at < contract.period_end:
        return
    used = used_count(contract.id, starting_from=contract.period_end, moving=moving)
    if used >= contract.rollover_sessions:
        raise SchedulingError(
            f"Only {contract.rollover_sessions} unused credit"
            f"{'s' if contract.rollover_sessions != 1 else ''} of this period roll over, "
            "and they are booked."
        )


def _check_overlaps(
    contract: Contract, starts_at: datetime, ends_at: datetime, *, moving: int | None = None
) -> None:
    """Neither party may have another scheduled session in the way (but the one `moving`)."""
    overlapping = db.session.execute(
        availability.party_sessions(contract, starts_at, ends_at, moving)
    ).all()
    if any(row.coach_id == contract.coach_id for row in overlapping):
        raise SchedulingError(
            f"{contract.coach.name} already has a session at that time. Pick another time."
        )
    if overlapping:
        raise SchedulingError(f"{contract.student.name} already has another session at that time.")


def _locked_contract(contract_id: int) -> Contract:
    """Lock the contract, then its coach and student: the order every scheduling write uses."""
    contract = lock_contract(contract_id)
    assert contract is not None  # the caller found it as a party
    lock_parties(contract)
    return contract


def lock_parties(contract: Contract) -> None:
    """Lock the coach's and the student's rows, in booking's order, for a caller that holds
    the contract's lock already (holding a slot, booking a paid hold)."""
    _lock_users(contract.coach_id, contract.student_id)


def check_free(contract: Contract, starts_at: datetime) -> None:
    """Refuse (SchedulingError) a start a new session of `contract` cannot have: off the
    grid, past, not a free slot of the coach's calendar (another contract's live hold
    included), or overlapping either party's scheduled sessions. The caller holds the
    locks (`lock_parties`)."""
    _check_time(contract, starts_at)
    _check_overlaps(
        contract, starts_at, starts_at + timedelta(minutes=contract.minutes_per_session)
    )


def session_length(contract: Contract) -> timedelta:
    return timedelta(minutes=contract.minutes_per_session)


def has_scheduled_session(contract: Contract) -> bool:
    return db.session.scalar(
        select(CoachingSession.id).where(
            CoachingSession.contract_id == contract.id,
            CoachingSession.status == SessionStatus.SCHEDULED,
        ).limit(1)
    ) is not None


def book_session(
    contract_id: int,
    user: User,
    *,
    starts_at: datetime,
    note: str | None = None,
    location: str | None = None,
) -> CoachingSession:
    """Book one session of an active, paid contract for its coach or student.

    Refuses (SchedulingError) a time off the quarter-hour grid, in the past, that is
    not a free slot of the coach's calendar (`availability.refusal`: hours, days off,
    notice, horizon), beyond the contract's session count, or overlapping the coach's
    (or the student's) other scheduled sessions. All of it is checked under the locks.
    `location` is this session's own meeting place, overriding the contract's.
    """
    found = db.session.scalar(
        select(Contract.id).where(Contract.id == contract_id, party_filter(Contract, user))
    )
    if found is None:
        raise NotFound()
    contract = _locked_contract(contract_id)
    check_scheduling_open(contract)
    ends_at = starts_at + timedelta(minutes=contract.minutes_per_session)
    _check_time(contract, starts_at)
    _check_count(contract)
    _check_rollover(contract, starts_at)
    _check_overlaps(contract, starts_at, ends_at)
    return _add_session(contract, user, starts_at, note=note, location=location)


def book_held_session(
    contract: Contract, starts_at: datetime, *, promised: bool
) -> CoachingSession:
    """Book the first session a paid hold kept for the student (`scheduling.holds`), under
    the contract's lock, once the payment made the contract active.

    A hold still `promised` (live when the money arrived) was the time's to keep: the
    calendar's notice and hours, checked when it was held, are not asked again. Otherwise
    the time is booked only as a new booking would be. Refuses (SchedulingError) a time
    taken meanwhile, and a contract whose money unlocks no session yet.
    """
    lock_parties(contract)
    if scheduling_closed_reason(contract) is not None:
        raise SchedulingError("Scheduling is not open on this contract.")
    ends_at = starts_at + timedelta(minutes=contract.minutes_per_session)
    if not promised:
        _check_time(contract, starts_at)
    elif starts_at <= now():
        raise SchedulingError("That time has passed.")
    _check_count(contract)
    _check_rollover(contract, starts_at)
    _check_overlaps(contract, starts_at, ends_at)
    return _add_session(contract, contract.student, starts_at)


def _add_session(
    contract: Contract,
    user: User,
    starts_at: datetime,
    *,
    note: str | None = None,
    location: str | None = None,
) -> CoachingSession:
    """Write a booking the checks allowed, its audit entry and the other party's notice."""
    ends_at = starts_at + timedelta(minutes=contract.minutes_per_session)
    booked = CoachingSession(
        contract_id=contract.id,
        coach_id=contract.coach_id,
        booked_by_id=user.id,
        starts_at=starts_at,
        ends_at=ends_at,
        note=(note or "").strip() or None,
        location=(location or "").strip() or None,
    )
    try:
        with db.session.begin_nested():
            db.session.add(booked)
    except IntegrityError:
        # The database's guard: only reachable if the locks above were bypassed.
        raise SchedulingError("That time was just taken. Pick another time.") from None
    audit(
        "session.booked",
        booked,
        actor=user,
        after={"contract_id": contract.id, "starts_at": starts_at.isoformat()},
    )
    other = contract.student if user.id == contract.coach_id else contract.coach
    when = format_local(starts_at, other.timezone, SESSION_FORMAT)
    notify(
        other,
        f"{user.name} booked a session of “{contract.title}” for {when}.",
        link=url_for("contracts.detail", contract_id=contract.id),
        subject=f"Coachpact: session booked for {when}",
    )
    return booked


# --- changing ------------------------------------------------------------------


def has_started(booked: CoachingSession) -> bool:
    return booked.starts_at <= now()


def reschedule_refusal(booked: CoachingSession, user: User) -> str | None:
    """Why `user` cannot move `booked` now (whatever the new time), or None when they can."""
    if booked.status is not SessionStatus.SCHEDULED:
        return f"This session is {booked.status.value.replace('_', ' ')}; it cannot be moved."
    if has_started(booked):
        return "This session has already started; it can no longer be moved."
    if is_late_cancellation(booked, user):
        hours = current_app.config["SESSION_CANCEL_NOTICE_HOURS"]
        return (
            f"This session starts in less than {hours:g} hours, so it can no longer be moved; "
            "cancelling it now would count it as used."
        )
    return None


def reschedule_session(session_id: int, user: User, *, starts_at: datetime) -> CoachingSession:
    """Move a scheduled session that has not started to another free slot.

    Either party may; a student not inside SESSION_CANCEL_NOTICE_HOURS (moving it
    then would dodge the late-cancellation rule). The new time passes the same rules
    as a booking but the count, and the session itself is no obstacle to its own
    move. Locks as booking does (contract, coach, student), then the session.
    """
    found = session_for_party(session_id, user)
    contract = _locked_contract(found.contract_id)
    booked = lock_by_id(db.session, CoachingSession, session_id)
    assert booked is not None  # found just above; sessions are never deleted
    check_scheduling_open(contract)
    refused = reschedule_refusal(booked, user)
    if refused:
        raise SchedulingError(refused)
    if starts_at == booked.starts_at:
        raise SchedulingError("The session is already at that time. Pick another time.")
    ends_at = starts_at + timedelta(minutes=contract.minutes_per_session)
    _check_time(contract, starts_at)
    _check_rollover(contract, starts_at, moving=booked.id)
    _check_overlaps(contract, starts_at, ends_at, moving=booked.id)
    before = {"starts_at": booked.starts_at.isoformat(), "ends_at": booked.ends_at.isoformat()}
    was = booked.starts_at
    try:
        with db.session.begin_nested():
            booked.starts_at, booked.ends_at = starts_at, ends_at
            booked.sequence += 1
            booked.rescheduled_at = now()
            db.session.flush()
    except IntegrityError:
        # The database's guard: only reachable if the locks above were bypassed.
        raise SchedulingError("That time was just taken. Pick another time.") from None
    audit(
        "session.rescheduled",
        booked,
        actor=user,
        before=before,
        after={"starts_at": starts_at.isoformat(), "ends_at": ends_at.isoformat()},
    )
    other = contract.student if user.id == contract.coach_id else contract.coach
    old = format_local(was, other.timezone, SESSION_FORMAT)
    new = format_local(starts_at, other.timezone, SESSION_FORMAT)
    notify(
        other,
        f"{user.name} moved the session of “{contract.title}” from {old} to {new}.",
        link=url_for("contracts.detail", contract_id=contract.id),
        subject=f"Coachpact: session moved to {new}",
    )
    return booked


def is_late_cancellation(
    booked: CoachingSession, user: User, moment: datetime | None = None
) -> bool:
    """Whether `user` cancelling now would lose the session (a student, inside the notice)."""
    notice = timedelta(hours=float(current_app.config["SESSION_CANCEL_NOTICE_HOURS"]))
    is_student = user.id == booked.contract.student_id
    return is_student and booked.starts_at - (moment or now()) < notice


def cancel_session(session_id: int, user: User) -> CoachingSession:
    """Cancel a scheduled session that has not started.

    A student cancelling inside the notice period (SESSION_CANCEL_NOTICE_HOURS)
    loses the session: it stays counted as used. Earlier cancellations, and any
    by the coach (the student should not pay for the coach's change of plan),
    free the slot for a new booking.
    """
    booked = session_for_party(session_id, user, lock=True)
    contract = booked.contract
    check_scheduling_open(contract)
    moment = now()
    if booked.status is SessionStatus.SCHEDULED and booked.starts_at <= moment:
        raise SchedulingError(
            "This session has already started; the coach marks it completed or no-show."
        )
    booked.status = check_transition(
        SESSION_TRANSITIONS, booked.status, SessionStatus.CANCELLED, "session"
    )
    booked.late_cancellation = is_late_cancellation(booked, user, moment)
    booked.cancelled_by_id = user.id
    booked.cancelled_at = moment
    booked.sequence += 1  # calendars replace their copy of the event with the cancelled one
    db.session.flush()
    audit(
        "session.cancelled",
        booked,
        actor=user,
        after={"late": booked.late_cancellation, "starts_at": booked.starts_at.isoformat()},
    )
    other = contract.student if user.id == contract.coach_id else contract.coach
    when = format_local(booked.starts_at, other.timezone, SESSION_FORMAT)
    notify(
        other,
        f"{user.name} cancelled the session of “{contract.title}” on {when}.",
        link=url_for("contracts.detail", contract_id=contract.id),
        subject=f"Coachpact: session on {when} cancelled",
    )
    _complete_if_done(contract)
    return booked


def mark_session(session_id: int, coach: User, status: SessionStatus) -> CoachingSession:
    """The coach marks a session that has started as completed or no-show."""
    if status not in (SessionStatus.COMPLETED, SessionStatus.NO_SHOW):
        raise ValueError(f"a session is not marked {status.value}")
    booked = session_for_party(session_id, coach, lock=True)
    contract = booked.contract
    check_scheduling_open(contract)
    if coach.id != contract.coach_id:
        raise NotAllowed("Only the coach marks sessions.")
    moment = now()
    if booked.status is SessionStatus.SCHEDULED and booked.starts_at > moment:
        raise SchedulingError("A session can be marked once it has started.")
    booked.status = check_transition(SESSION_TRANSITIONS, booked.status, status, "session")
    booked.marked_at = moment
    db.session.flush()
    audit("session.marked", booked, actor=coach, after={"status": status.value})
    _complete_if_done(contract)
    return booked


def _complete_if_done(contract: Contract) -> None:
    """Complete the contract once every one of its sessions has been used and none is open."""
    still_scheduled = db.session.scalar(
        select(func.count())
        .select_from(CoachingSession)
        .where(
            CoachingSession.contract_id == contract.id,
            CoachingSession.status == SessionStatus.SCHEDULED,
        )
    )
    if still_scheduled or used_count(contract.id) < contract.session_allowance:
        return
    lifecycle.complete(contract)
