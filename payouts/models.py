"""Coach payouts: connected accounts, one share of the earning per delivered session,
and the losses a failed reversal leaves with the platform."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Float, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from accounts.models import User
from clock import now
from contracts.models import CoachingSession, Contract
from database.types import UTCDateTime, str_enum
from extensions import Model


class ConnectedAccount(Model):
    """A coach's Stripe connected account (Express dashboard, controller properties),
    mirrored from Stripe's `account.updated` events and from the onboarding return."""

    __tablename__ = "connected_accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), unique=True)
    stripe_account_id: Mapped[str] = mapped_column(String(255), unique=True)
    charges_enabled: Mapped[bool] = mapped_column(default=False)
    payouts_enabled: Mapped[bool] = mapped_column(default=False)
    details_submitted: Mapped[bool] = mapped_column(default=False)
    # Stripe's `capabilities.transfers == "active"`: a transfer to the account can land.
    transfers_active: Mapped[bool] = mapped_column(default=False)
    # Stripe's `requirements.currently_due`: what the coach still has to give Stripe.
    requirements_due: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now, onupdate=now)

    user: Mapped[User] = relationship()

    @property
    def ready(self) -> bool:
        """Transfers can be sent to it and paid out to the coach's bank."""
        return self.payouts_enabled and self.transfers_active


class ShareStatus(enum.Enum):
    HELD = "held"  # in its hold after the session was marked; not transferable before due_at
    DUE = "due"  # out of its hold; transferred once the coach's account is ready
    TRANSFERRING = "transferring"  # claimed by one job; Stripe is being asked
    TRANSFERRED = "transferred"  # the transfer exists at Stripe (reversals may follow)
    FAILED = "failed"  # Stripe refused the transfer; retried at next_attempt_at (backoff)
    CANCELLED = "cancelled"  # refunded in full before it was transferred; nothing to send


SHARE_TRANSITIONS: dict[ShareStatus, frozenset[ShareStatus]] = {
    ShareStatus.HELD: frozenset({ShareStatus.DUE, ShareStatus.CANCELLED}),
    ShareStatus.DUE: frozenset({ShareStatus.TRANSFERRING, ShareStatus.CANCELLED}),
    # Not reached: back to due with the same idempotency key.
    ShareStatus.TRANSFERRING: frozenset(
        {ShareStatus.TRANSFERRED, ShareStatus.FAILED, ShareStatus.DUE}
    ),
    ShareStatus.FAILED: frozenset({ShareStatus.TRANSFERRING, ShareStatus.CANCELLED}),
}

# Shares whose money is still with the platform, waiting to go to the coach.
UNSENT_STATUSES = (ShareStatus.HELD, ShareStatus.DUE, ShareStatus.TRANSFERRING, ShareStatus.FAILED)


class SessionShare(Model):
    """The coach's share of the earning for one delivered (completed or no-show) session.

    `amount` is the split share, fixed when the row is made (`payouts.shares.split`).
    Refunds take `amount × refunded ÷ total` (rounded up) off it: before the
    transfer by sending less (`transfer_amount`, fixed at the first claim), after
    it by reversals (`reversed_amount`), or, when a reversal fails, as a loss the
    platform bears (`lost_amount`, with a PlatformLoss row).
    """

    __tablename__ = "session_shares"
    __table_args__ = (
        CheckConstraint("amount >= 0", name="amount_not_negative"),
        CheckConstraint(
            "transfer_amount IS NULL OR transfer_amount BETWEEN 0 AND amount",
            name="transfer_amount_range",
        ),
        CheckConstraint("reversed_amount >= 0 AND lost_amount >= 0", name="taken_not_negative"),
        UniqueConstraint("contract_id", "number", name="uq_session_shares_contract_id_number"),
        Index("ix_session_shares_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_session_shares_coach_id_contract_id", "coach_id", "contract_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("coaching_sessions.id"), unique=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"))
    coach_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # k: this is the contract's k-th delivered session (1-based); the last carries the remainder.
    number: Mapped[int]
    amount: Mapped[int]  # minor units
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[ShareStatus] = mapped_column(str_enum(ShareStatus), default=ShareStatus.HELD)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # What the transfer carries: the share net of refunds at its first claim, then fixed,
    # so that every retry sends the same request under the same idempotency key.
    transfer_amount: Mapped[int | None]
    reversed_amount: Mapped[int] = mapped_column(default=0)  # reversed through Stripe
    lost_amount: Mapped[int] = mapped_column(default=0)  # reversals Stripe refused
    stripe_transfer_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    # The payment and charge the transfer is funded from (`source_transaction`).
    source_payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"))
    source_charge_id: Mapped[str | None] = mapped_column(String(255))
    attempts: Mapped[int] = mapped_column(default=0)
    # Transfers Stripe refused: each refusal proves no transfer was made, so the next
    # try may use a new idempotency key (a cached refusal would answer the old one).
    refusals: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    last_error: Mapped[str | None] = mapped_column(String(500))
    # A reversal Stripe refused because the coach's available balance was short waits and
    # is asked again (backoff, a new idempotency key per refusal) until it goes through or,
    # `payouts.transfers.REVERSAL_GIVE_UP` after the first refusal, becomes a PlatformLoss.
    reversal_refusals: Mapped[int] = mapped_column(default=0)  # ever; numbers the keys
    reversal_waiting_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reversal_next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reversal_error: Mapped[str | None] = mapped_column(String(500))
    transferred_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now, onupdate=now)

    session: Mapped[CoachingSession] = relationship()
    contract: Mapped[Contract] = relationship()
    coach: Mapped[User] = relationship()

    @property
    def reversal_waiting(self) -> bool:
        """A reversal was refused for the coach's short balance and is to be asked again."""
        return self.reversal_waiting_since is not None


class PlatformLoss(Model):
    """A reversal Stripe refused (the coach's balance was short): the platform bears it.

    Written once per refused reversal; the share's `lost_amount` keeps it from being
    asked again. Never deleted.
    """

    __tablename__ = "platform_losses"
    __table_args__ = (Index("ix_platform_losses_contract_id", "contract_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    share_id: Mapped[int] = mapped_column(ForeignKey("session_shares.id"))
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"))
    amount: Mapped[int]  # minor units
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(String(500))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)

    share: Mapped[SessionShare] = relationship()


class TransferReversal(Model):
    """One reversal Stripe made of a share's transfer: what reconciliation matches with the
    `transfer_refund` balance transaction. Written with Stripe's answer; never deleted."""

    __tablename__ = "transfer_reversals"
    __table_args__ = (Index("ix_transfer_reversals_created_at", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    share_id: Mapped[int] = mapped_column(ForeignKey("session_shares.id"), index=True)
    stripe_reversal_id: Mapped[str] = mapped_column(String(255), unique=True)
    amount: Mapped[int]  # minor units
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)

    share: Mapped[SessionShare] = relationship()


class LedgerCheckRun(Model):
    """One run of the ledger check (`payouts.ledger.record_check`): what the admin pages
    show, so no page runs the check, which reads every paid contract. Kept 30 days."""

    __tablename__ = "ledger_check_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now, index=True)
    lines: Mapped[list[str]] = mapped_column(JSON, default=list)  # the discrepancies
    seconds: Mapped[float] = mapped_column(Float, default=0.0)  # how long the check took
