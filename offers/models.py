from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index
from sqlalchemy.orm import Mapped, mapped_column, relationship

from accounts.models import User
from clock import now
from contracts.models import DealTerms, terms_checks
from database.types import UTCDateTime, str_enum
from extensions import Model


class OfferStatus(enum.Enum):
    ACTIVE = "active"  # shown on the coach's public page; students may buy it
    PAUSED = "paused"  # hidden and not for sale for now; the coach may resume it
    ARCHIVED = "archived"  # retired for good; contracts made from it keep their copy


OFFER_TRANSITIONS: dict[OfferStatus, frozenset[OfferStatus]] = {
    OfferStatus.ACTIVE: frozenset({OfferStatus.PAUSED, OfferStatus.ARCHIVED}),
    OfferStatus.PAUSED: frozenset({OfferStatus.ACTIVE, OfferStatus.ARCHIVED}),
}


class Offer(DealTerms, Model):
    """Terms a coach sells to any student: the proposal's terms without a student.

    Each purchase copies them into an accepted proposal and its contract, so changing or
    archiving an offer never changes a contract made from it.
    """

    __tablename__ = "offers"
    __table_args__ = (
        *terms_checks(),
        Index("ix_offers_coach_id_status", "coach_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    coach_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    status: Mapped[OfferStatus] = mapped_column(
        str_enum(OfferStatus), default=OfferStatus.ACTIVE
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now, onupdate=now)

    coach: Mapped[User] = relationship()

    @property
    def total(self) -> int:
        return self.price_per_session * self.session_count

    @property
    def for_sale(self) -> bool:
        return self.status is OfferStatus.ACTIVE

    def __repr__(self) -> str:
        return f"<Offer {self.id} {self.title!r} {self.status.value}>"
