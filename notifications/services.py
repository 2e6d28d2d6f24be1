"""Notify users: a row for the in-app list, and an email sent only after commit.

Mail leaves the building only when the transaction that caused it commits, so a
rolled-back fulfilment (or a redelivered webhook that changes nothing) never
sends a message about something that did not happen.
"""

from __future__ import annotations

from typing import NamedTuple

from flask import Flask, current_app
from flask_mail import Message
from sqlalchemy import event, func, insert, select, update
from sqlalchemy.orm import Session

from accounts.models import User
from db_types import table_of, utcnow
from extensions import db, mail
from notifications.models import Notification

_OUTBOX = "notifications_outbox"
# A plain INSERT, built once: no ORM bookkeeping, and no RETURNING (the id is never
# read), so it can be sent in one round trip with other writes (`one_round_trip`).
_INSERT = insert(table_of(Notification)).inline()


class Recipient(NamedTuple):
    """Who is told: a user's id and email. A `User` serves as one too."""

    id: int
    email: str


def notify(
    user: User | Recipient,
    message: str,
    *,
    link: str | None = None,
    subject: str | None = None,
) -> None:
    """Add an in-app notification for `user` and queue its email for after commit."""
    db.session.execute(
        _INSERT, {"user_id": user.id, "message": message, "link": link, "created_at": utcnow()}
    )
    body = message if link is None else f"{message}\n\n{link}"
    db.session.info.setdefault(_OUTBOX, []).append(
        (user.email, subject or "Coachpact: " + message[:60], body)
    )


def unread_count(user: User) -> int:
    return (
        db.session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.user_id == user.id, Notification.read_at.is_(None))
        )
        or 0
    )


def notifications_of(user: User, limit: int = 50) -> list[Notification]:
    return list(
        db.session.scalars(
            select(Notification)
            .where(Notification.user_id == user.id)
            .order_by(Notification.created_at.desc(), Notification.id.desc())
            .limit(limit)
        )
    )


def mark_all_read(user: User) -> None:
    db.session.execute(
        update(Notification)
        .where(Notification.user_id == user.id, Notification.read_at.is_(None))
        .values(read_at=utcnow())
    )


def _send_outbox(session: Session) -> None:
    outbox = session.info.pop(_OUTBOX, [])
    for recipient, subject, body in outbox:
        message = Message(subject=subject, recipients=[recipient], body=body)
        if current_app.config.get("MAIL_SUPPRESS_SEND"):
            current_app.logger.info("mail to %s: %s\n%s", recipient, subject, body)
        try:
            mail.send(message)
        except OSError:
            # The in-app notification is committed; a mail outage must not undo it.
            current_app.logger.exception("could not send mail to %s", recipient)


def _drop_outbox(session: Session) -> None:
    session.info.pop(_OUTBOX, None)


def init_app(app: Flask) -> None:
    """Send queued mail after each commit of the app's sessions; drop it on rollback."""
    if not event.contains(Session, "after_commit", _send_outbox):
        event.listen(Session, "after_commit", _send_outbox)
        event.listen(Session, "after_soft_rollback", lambda session, _tx: _drop_outbox(session))
