"""Notify users: a row for the in-app list, and a mail in the outbox, in the caller's transaction.

The mail is sent by a job after the transaction commits (`notifications.tasks`),
so a rolled-back change (or a redelivered webhook that changes nothing) never
mails about something that did not happen, and a crash after the commit loses
no mail: the sweep finds it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from flask import current_app
from flask_sqlalchemy.pagination import Pagination
from sqlalchemy import func, select, update

import clock
import jobs
from database.paging import page_of
from extensions import db
from notifications.models import Notification, OutboxMail
from notifications.tasks import send_mail

if TYPE_CHECKING:
    # For typing only: accounts imports notifications, never the other way round at run time.
    from accounts.models import User


def notify(
    user: User, message: str, *, link: str | None = None, subject: str | None = None
) -> None:
    """Add an in-app notification for `user` and a mail to send once the transaction commits."""
    db.session.add(Notification(user_id=user.id, message=message, link=link))
    queue_mail(
        user.email,
        subject or "Coachpact: " + shorten(message, 60),
        message if link is None else f"{message}\n\n{_absolute(link)}",
    )


def shorten(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters at a word boundary, with an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if text[limit - 1] != " " and " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:.–—-“(") + "…"


def queue_mail(recipient: str, subject: str, body: str) -> None:
    """Put a mail in the outbox, sent by a job once the caller's transaction commits.

    For mail that has no in-app twin: to an address that is not (or not yet) an account's,
    such as a password reset link or an email change confirmation.
    """
    mail = OutboxMail(recipient=recipient, subject=subject, body=body)
    db.session.add(mail)
    jobs.enqueue_after_commit(db.session(), send_mail, jobs.RowId(mail), batch=True)


def mailed_within(recipient: str, subject: str, period: timedelta) -> bool:
    """Whether a mail with this subject was queued for `recipient` in the last `period`."""
    since = clock.now() - period
    return db.session.scalar(
        select(OutboxMail.id)
        .where(OutboxMail.recipient == recipient, OutboxMail.subject == subject,
               OutboxMail.created_at >= since)
        .limit(1)
    ) is not None


def unread_count(user: User) -> int:
    return (
        db.session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.user_id == user.id, Notification.read_at.is_(None))
        )
        or 0
    )


NOTIFICATIONS_PER_PAGE = 25


def notifications_page(user: User, *, unread_only: bool = False, page: int = 1) -> Pagination:
    """One page of the user's notifications, newest first (LIMIT/OFFSET in SQL); below 1
    is the first page, past the end the last one."""
    query = (
        select(Notification)
        .where(Notification.user_id == user.id)
        .order_by(Notification.created_at.desc(), Notification.id.desc())
    )
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    return page_of(query, page, NOTIFICATIONS_PER_PAGE)


def mark_read(user: User, shown: list[Notification]) -> None:
    """Mark the notifications a page has shown `user` as read (the others stay unread)."""
    ids = [item.id for item in shown if item.read_at is None]
    if ids:
        db.session.execute(
            update(Notification)
            .where(
                Notification.user_id == user.id,
                Notification.id.in_(ids),
                Notification.read_at.is_(None),
            )
            .values(read_at=clock.now())
        )


def _absolute(link: str) -> str:
    """Links in mail leave the site: a path becomes an address on APP_BASE_URL."""
    if link.startswith("/"):
        return current_app.config["APP_BASE_URL"].rstrip("/") + link
    return link
