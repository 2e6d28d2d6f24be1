"""Notify users: a row for the in-app list, and a mail in the outbox, in the caller's transaction.

The mail is sent by a job after the transaction commits (`notifications.tasks`),
so a rolled-back change (or a redelivered webhook that changes nothing) never
mails about something that did not happen, and a crash after the commit loses
no mail: the sweep finds it.
"""

from __future__ import annotations

from flask import current_app
from sqlalchemy import func, select, update

import clock
import jobs
from accounts.models import User
from extensions import db
from notifications.models import Notification, OutboxMail
from notifications.tasks import send_mail


def notify(
    user: User, message: str, *, link: str | None = None, subject: str | None = None
) -> None:
    """Add an in-app notification for `user` and a mail to send once the transaction commits."""
    db.session.add(Notification(user_id=user.id, message=message, link=link))
    mail = OutboxMail(
        recipient=user.email,
        subject=subject or "Coachpact: " + message[:60],
        body=message if link is None else f"{message}\n\n{_absolute(link)}",
    )
    db.session.add(mail)
    db.session.flush()
    jobs.enqueue_after_commit(db.session(), send_mail, mail.id)


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
        .values(read_at=clock.now())
    )


def _absolute(link: str) -> str:
    """Links in mail leave the site: a path becomes an address on APP_BASE_URL."""
    if link.startswith("/"):
        return current_app.config["APP_BASE_URL"].rstrip("/") + link
    return link
