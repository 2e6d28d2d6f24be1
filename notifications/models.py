from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from clock import now
from database.types import UTCDateTime, str_enum
from extensions import Model


class Notification(Model):
    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_user_id_created_at", "user_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    message: Mapped[str] = mapped_column(String(500))
    link: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class MailStatus(enum.Enum):
    PENDING = "pending"  # written with the change it tells of; waiting to be sent
    SENT = "sent"  # handed to the mail server
    FAILED = "failed"  # every attempt failed; kept for an admin to see


MAIL_TRANSITIONS: dict[MailStatus, frozenset[MailStatus]] = {
    MailStatus.PENDING: frozenset({MailStatus.SENT, MailStatus.FAILED}),
}


class OutboxMail(Model):
    """A mail to send, written in the transaction of the change it tells of.

    A rolled-back change takes its mail with it; a committed one is sent by a
    job, retried with backoff, and found again by the sweep if a job was lost.
    """

    __tablename__ = "outbox_mails"
    __table_args__ = (Index("ix_outbox_mails_status_next_attempt_at", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[MailStatus] = mapped_column(str_enum(MailStatus), default=MailStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    # When the next attempt is due; while a job is sending, how long its claim holds.
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
