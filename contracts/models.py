from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from accounts.models import User
from clock import now
from contracts.plans import unlocked_sessions
from contracts.refund_policy import terms_in_words, window_days_in_force
from database.text import fold, trigram_index_kwargs
from database.types import UTCDateTime, str_enum
from extensions import Model


class ProposalStatus(enum.Enum):
    SENT = "sent"  # waiting for the student's answer
    ACCEPTED = "accepted"  # the student accepted; a contract exists
    DECLINED = "declined"  # the student said no
    WITHDRAWN = "withdrawn"  # the coach took it back before an answer
    EXPIRED = "expired"  # nobody answered before `expires_at` (PROPOSAL_EXPIRY_DAYS)


PROPOSAL_TRANSITIONS: dict[ProposalStatus, frozenset[ProposalStatus]] = {
    ProposalStatus.SENT: frozenset(
        {
            ProposalStatus.ACCEPTED,
            ProposalStatus.DECLINED,
            ProposalStatus.WITHDRAWN,
            ProposalStatus.EXPIRED,
        }
    ),
}


class ContractStatus(enum.Enum):
    PENDING = "pending"  # accepted, waiting for payment
    ACTIVE = "active"  # paid; sessions can be scheduled
    COMPLETED = "completed"  # every session completed or missed
    CANCELLED = "cancelled"  # ended before completion
    REFUNDED = "refunded"  # the money went back to the student
    DISPUTED = "disputed"  # the student's bank opened a dispute
    PAST_DUE = "past_due"  # an instalment stayed unpaid after its retries; scheduling pauses


CONTRACT_TRANSITIONS: dict[ContractStatus, frozenset[ContractStatus]] = {
    ContractStatus.PENDING: frozenset({ContractStatus.ACTIVE, ContractStatus.CANCELLED}),
    ContractStatus.ACTIVE: frozenset(
        {
            ContractStatus.COMPLETED,
            ContractStatus.CANCELLED,
            ContractStatus.REFUNDED,
            ContractStatus.DISPUTED,
            ContractStatus.PAST_DUE,
        }
    ),
    # A later payment makes it active again; an admin may close it.
    ContractStatus.PAST_DUE: frozenset(
        {
            ContractStatus.ACTIVE,
            ContractStatus.CANCELLED,
            ContractStatus.REFUNDED,
            ContractStatus.DISPUTED,
        }
    ),
    ContractStatus.COMPLETED: frozenset({ContractStatus.DISPUTED}),
    ContractStatus.CANCELLED: frozenset({ContractStatus.DISPUTED}),
    ContractStatus.REFUNDED: frozenset({ContractStatus.DISPUTED}),
    # A dispute won returns the contract to where it was; a dispute lost refunds it.
    ContractStatus.DISPUTED: frozenset(
        {
            ContractStatus.ACTIVE,
            ContractStatus.PAST_DUE,
            ContractStatus.COMPLETED,
            ContractStatus.CANCELLED,
            ContractStatus.REFUNDED,
        }
    ),
}


class PaymentStatus(enum.Enum):
    PENDING = "pending"  # nothing paid yet
    PROCESSING = "processing"  # a bank debit is on its way; nothing more to pay now
    PARTIALLY_PAID = "partially_paid"  # on a plan: the deposit and some instalments arrived
    PAID = "paid"  # the total was received
    FAILED = "failed"  # the last attempt failed; the student may retry
    REFUNDED = "refunded"  # all of it went back
    PARTIALLY_REFUNDED = "partially_refunded"  # some of it went back
    DISPUTED = "disputed"  # a chargeback is open


# The statuses a contract's money decides (`money_status`): once money arrived, the
# payment status follows what was received, written off and given back, in any
# direction (a refund that fails after it succeeded brings money back).
MONEY_STATUSES = frozenset(
    {
        PaymentStatus.PARTIALLY_PAID,
        PaymentStatus.PAID,
        PaymentStatus.PARTIALLY_REFUNDED,
        PaymentStatus.REFUNDED,
    }
)

PAYMENT_STATUS_TRANSITIONS: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    PaymentStatus.PENDING: frozenset(
        {PaymentStatus.PROCESSING, PaymentStatus.FAILED} | MONEY_STATUSES
    ),
    PaymentStatus.PROCESSING: frozenset({PaymentStatus.FAILED} | MONEY_STATUSES),
    PaymentStatus.FAILED: frozenset(
        {PaymentStatus.PROCESSING, PaymentStatus.FAILED} | MONEY_STATUSES
    ),
    **{
        status: frozenset(MONEY_STATUSES | {PaymentStatus.DISPUTED})
        for status in MONEY_STATUSES
    },
    PaymentStatus.DISPUTED: MONEY_STATUSES,
}


def money_status(total: int, arrived: int, waived: int, returned: int) -> PaymentStatus | None:
    """The payment status the money says; None while nothing arrived or was written off.

    Everything given back: refunded. Some given back: partially refunded. Else paid
    once what arrived plus what an admin wrote off reaches the total, partially paid
    before that (a plan's deposit and instalments).
    """
    if arrived <= 0 and waived <= 0:
        return None
    if returned > 0:
        return PaymentStatus.REFUNDED if returned >= arrived else PaymentStatus.PARTIALLY_REFUNDED
    return PaymentStatus.PAID if arrived + waived >= total else PaymentStatus.PARTIALLY_PAID


# Bounds on proposal terms, shared by the form validators and the database checks.
SESSION_COUNT_RANGE = (1, 100)
MINUTES_RANGE = (15, 240)


class DealTerms:
    """What is sold, without a buyer: an offer's terms, copied into each proposal made
    from it and frozen on the contract. Offers, proposals and contracts share these
    columns, their checks (`terms_checks`) and their validation (`contracts.forms`)."""

    title: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text)
    session_count: Mapped[int]
    minutes_per_session: Mapped[int]
    price_per_session: Mapped[int]  # minor units
    currency: Mapped[str] = mapped_column(String(3))
    # Payment plans the coach allows (`contracts.plans`): None = pay in full only.
    plan_deposit_percent: Mapped[int | None]
    plan_max_instalments: Mapped[int | None]
    # The smallest total (minor units) the coach allows a plan for; None = the platform's
    # PLAN_MINIMUM_TOTAL alone (the higher of the two applies).
    plan_minimum_total: Mapped[int | None]

    def refund_terms_in_words(self, window_days: int) -> str:
        """The refund policy for these terms with a `window_days` full-refund window."""
        return terms_in_words(self, window_days)


def terms_checks() -> tuple[CheckConstraint, ...]:
    """The database's checks on terms written by a coach (offers and proposals)."""
    return (
        CheckConstraint(
            f"session_count BETWEEN {SESSION_COUNT_RANGE[0]} AND {SESSION_COUNT_RANGE[1]}",
            name="session_count_range",
        ),
        CheckConstraint(
            f"minutes_per_session BETWEEN {MINUTES_RANGE[0]} AND {MINUTES_RANGE[1]}",
            name="minutes_range",
        ),
        CheckConstraint("price_per_session > 0", name="price_positive"),
    )


class Terms(DealTerms):
    """The parties and terms of a proposal; a contract keeps a frozen copy of them."""

    coach_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    student_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # The coach's offer these terms were bought from (`offers`); None for a proposal the
    # coach wrote for one student.
    offer_id: Mapped[int | None] = mapped_column(ForeignKey("offers.id"))


class Proposal(Terms, Model):
    __tablename__ = "proposals"
    __table_args__ = (
        *terms_checks(),
        Index("ix_proposals_student_id_status", "student_id", "status"),
        Index("ix_proposals_coach_id_status", "coach_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[ProposalStatus] = mapped_column(
        str_enum(ProposalStatus), default=ProposalStatus.SENT
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # After this instant the student can no longer accept; None = never expires (older rows).
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    coach: Mapped[User] = relationship(foreign_keys="Proposal.coach_id")
    student: Mapped[User] = relationship(foreign_keys="Proposal.student_id")
    contract: Mapped[Contract | None] = relationship(back_populates="proposal")

    @property
    def total(self) -> int:
        return self.price_per_session * self.session_count


class Contract(Terms, Model):
    """The terms a student accepted, frozen at acceptance, and where payment stands."""

    __tablename__ = "contracts"
    __table_args__ = (
        # A membership period's total is what its invoice charged (`offers.membership_periods`).
        CheckConstraint(
            "total_amount = price_per_session * session_count OR membership_id IS NOT NULL",
            name="total_matches_terms",
        ),
        CheckConstraint("coach_earning = total_amount - platform_fee", name="earning_is_net"),
        CheckConstraint("platform_fee >= 0 AND coach_earning >= 0", name="split_not_negative"),
        CheckConstraint("refund_full_window_days >= 0", name="refund_window_not_negative"),
        CheckConstraint(
            "sessions_released BETWEEN 0 AND session_count", name="sessions_released_range"
        ),
        Index("ix_contracts_student_id_created_at", "student_id", "created_at"),
        Index("ix_contracts_coach_id_created_at", "coach_id", "created_at"),
        Index("ix_contracts_membership_id_period_start", "membership_id", "period_start"),
        # The admin dashboard's open disputes: few rows among many contracts.
        Index(
            "ix_contracts_disputed_updated_at",
            "updated_at",
            sqlite_where=text("status = 'disputed'"),
            postgresql_where=text("status = 'disputed'"),
        ),
        Index(
            "ix_contracts_search_text_trgm", "search_text", **trigram_index_kwargs("search_text")
        ),
        # One purchase at a time: a student holds at most one pending contract per offer,
        # however many tabs buy it at once (`offers.services.buy_offer`).
        Index(
            "uq_contracts_student_id_offer_id_pending",
            "student_id",
            "offer_id",
            unique=True,
            sqlite_where=text("status = 'pending' AND offer_id IS NOT NULL"),
            postgresql_where=text("status = 'pending' AND offer_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Unique: one proposal makes at most one contract, whatever races happen.
    proposal_id: Mapped[int] = mapped_column(ForeignKey("proposals.id"), unique=True)
    total_amount: Mapped[int]  # minor units
    platform_fee: Mapped[int]  # minor units
    coach_earning: Mapped[int]  # minor units
    status: Mapped[ContractStatus] = mapped_column(
        str_enum(ContractStatus), default=ContractStatus.PENDING
    )
    payment_status: Mapped[PaymentStatus] = mapped_column(
        str_enum(PaymentStatus), default=PaymentStatus.PENDING
    )
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The refund policy in force at acceptance (contracts.refund_policy reads only this
    # copy): the full total back until the first session is used or this many days
    # after payment, whichever comes first. The default covers rows written elsewhere
    # than `accept_proposal` (demo history), which sets it explicitly.
    refund_full_window_days: Mapped[int] = mapped_column(default=window_days_in_force)
    # Sessions given back by partial refunds: the student can use only
    # `session_allowance` = session_count - sessions_released (`contracts.lifecycle`).
    sessions_released: Mapped[int] = mapped_column(default=0)
    # What arrived so far for the contract (minor units): the total when paid in full, the
    # deposit and instalments on a plan. Sessions unlock in proportion (`contracts.plans`).
    amount_paid: Mapped[int] = mapped_column(default=0)
    # A shortfall an admin wrote off when accepting a short payment (minor units): the
    # sessions it stands for unlock as if paid; the platform bears it.
    amount_waived: Mapped[int] = mapped_column(default=0)
    # What went back to the student (refunds made and disputes lost, minor units).
    # The three are written by the money core (`payments.standing`) through
    # `contracts.lifecycle`, so scheduling reads the contract's row, never payments.
    amount_returned: Mapped[int] = mapped_column(default=0)
    # The instalments the student chose, set when a plan's deposit is paid; None when the
    # contract is paid in full.
    plan_instalments: Mapped[int | None]
    # Where the sessions take place: a video-call address or a place, set by either party;
    # a session may override it (`CoachingSession.location`).
    meeting_location: Mapped[str | None] = mapped_column(String(500))
    # A membership's period (`offers.membership_periods`): the paid invoice's contract.
    # Its sessions start in [period_start, period_end); with rollover, up to
    # `rollover_sessions` unused ones may still start until `rollover_until`.
    membership_id: Mapped[int | None] = mapped_column(ForeignKey("memberships.id"))
    period_start: Mapped[datetime | None] = mapped_column(UTCDateTime())
    period_end: Mapped[datetime | None] = mapped_column(UTCDateTime())
    rollover_sessions: Mapped[int] = mapped_column(default=0, server_default="0")
    rollover_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The title folded for search (`database.text.fold`), kept by `_keep_search_text`.
    search_text: Mapped[str] = mapped_column(String(300), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now, onupdate=now)

    proposal: Mapped[Proposal] = relationship(back_populates="contract")

    @validates("title")
    def _keep_search_text(self, _key: str, value: str) -> str:
        self.search_text = fold(value or "")
        return value
    coach: Mapped[User] = relationship(foreign_keys="Contract.coach_id")
    student: Mapped[User] = relationship(foreign_keys="Contract.student_id")

    @property
    def sessions_unlocked(self) -> int:
        """The sessions the money kept so far opens.

        Paid in full at once: the allowance (a partial refund gives back whole
        sessions through `sessions_released`). On a plan, or short of the total:
        the share of the price covered (received or written off) less what went
        back, rounded down, never more than the allowance.
        """
        covered = (self.amount_paid or 0) + (self.amount_waived or 0)
        if self.plan_instalments is None and covered >= self.total_amount:
            return self.session_allowance
        excess = max(covered - self.total_amount, 0)
        returned = max((self.amount_returned or 0) - excess, 0)
        unlocking = min(covered, self.total_amount) - returned
        return min(
            unlocked_sessions(self.session_count, self.total_amount, unlocking),
            self.session_allowance,
        )

    @property
    def kept(self) -> int:
        """What the contract holds of the student's money now (received − given back)."""
        return (self.amount_paid or 0) - (self.amount_returned or 0)

    @property
    def bookable_until(self) -> datetime | None:
        """The instant before which a membership period's sessions start (its end, or the
        end of the rollover its unused sessions were given); None for other contracts."""
        if self.period_end is None:
            return None
        if self.rollover_sessions > 0 and self.rollover_until is not None:
            return max(self.period_end, self.rollover_until)
        return self.period_end

    @property
    def session_allowance(self) -> int:
        """The sessions the student may still use in all: bought minus given back."""
        return self.session_count - self.sessions_released

    def party_of(self, user: User) -> bool:
        return user.id in (self.coach_id, self.student_id)


class SessionStatus(enum.Enum):
    SCHEDULED = "scheduled"  # booked and still ahead, or waiting for the coach's mark
    COMPLETED = "completed"  # took place; the coach marked it after its start
    NO_SHOW = "no_show"  # the student did not come; counts as used
    CANCELLED = "cancelled"  # called off; `late_cancellation` says whether it still counts


SESSION_TRANSITIONS: dict[SessionStatus, frozenset[SessionStatus]] = {
    SessionStatus.SCHEDULED: frozenset(
        {SessionStatus.COMPLETED, SessionStatus.NO_SHOW, SessionStatus.CANCELLED}
    ),
}


class CoachingSession(Model):
    """One booked coaching session of a contract; its times are UTC instants."""

    __tablename__ = "coaching_sessions"
    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        Index("ix_coaching_sessions_contract_id_starts_at", "contract_id", "starts_at"),
        Index("ix_coaching_sessions_coach_id_starts_at", "coach_id", "starts_at"),
        # A cheap database guard under the service's locked overlap check: a coach
        # can never hold two live sessions starting at the same instant.
        Index(
            "uq_coaching_sessions_coach_id_starts_at_scheduled",
            "coach_id",
            "starts_at",
            unique=True,
            sqlite_where=text("status = 'scheduled'"),
            postgresql_where=text("status = 'scheduled'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"))
    # The contract's coach, copied so the overlap check and guard need no join.
    coach_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    booked_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[SessionStatus] = mapped_column(
        str_enum(SessionStatus), default=SessionStatus.SCHEDULED
    )
    note: Mapped[str | None] = mapped_column(String(500))
    # Cancelled inside the notice period by the student: the session counts as used.
    late_cancellation: Mapped[bool] = mapped_column(default=False)
    cancelled_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    marked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # This session's own meeting address or place; None = the contract's.
    location: Mapped[str | None] = mapped_column(String(500))
    # iCalendar SEQUENCE: raised at every reschedule or cancellation, so calendars that
    # read the feed or re-import the .ics replace their copy of the event.
    sequence: Mapped[int] = mapped_column(default=0)
    rescheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now, onupdate=now)

    contract: Mapped[Contract] = relationship()
    coach: Mapped[User] = relationship(foreign_keys="CoachingSession.coach_id")
    booked_by: Mapped[User] = relationship(foreign_keys="CoachingSession.booked_by_id")
    cancelled_by: Mapped[User | None] = relationship(
        foreign_keys="CoachingSession.cancelled_by_id"
    )

    @property
    def where(self) -> str | None:
        """Where this session takes place: its own location, else the contract's."""
        return self.location or self.contract.meeting_location

    @property
    def counts_as_used(self) -> bool:
        """Whether this session uses up one of the contract's sessions."""
        return self.status is not SessionStatus.CANCELLED or self.late_cancellation

    def __repr__(self) -> str:
        return f"<CoachingSession {self.id} {self.starts_at:%Y-%m-%d %H:%M}Z {self.status.value}>"
