"""Jobs that send the outbox's mail: one per mail after commit, and a sweep for lost ones."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any, cast

from flask import current_app
from flask_mail import Message
from sqlalchemy import CursorResult, update

import clock
import jobs
from database.states import check_transition
from extensions import db, mail
from notifications.models import MAIL_TRANSITIONS, MailStatus, OutboxMail

log = logging.getLogger(__name__)

# A job that claimed a mail and died leaves it to the sweep once the claim lapses.
CLAIM = timedelta(minutes=5)
MAX_ATTEMPTS = 10
# A mail still pending this long after it was due was lost by its job: the sweep resends.
SWEEP_GRACE = timedelta(seconds=30)


def retry_delay(attempts: int) -> timedelta:
    """30 s after the first failure, doubling, at most an hour."""
    return jobs.backoff(attempts, timedelta(seconds=30))


def deliver(mail_id: int) -> bool:
    """Send one outbox mail if it is due and nobody else is sending it; True once sent.

    The claim (a conditional UPDATE, committed) lets exactly one job send it;
    the send happens outside any transaction, and the result is recorded after.
    """
    moment = clock.now()
    claim = (
        update(OutboxMail)
        .where(
            OutboxMail.id == mail_id,
            OutboxMail.status == MailStatus.PENDING,
            OutboxMail.next_attempt_at <= moment,
        )
        .values(next_attempt_at=moment + CLAIM, attempts=OutboxMail.attempts + 1)
    )
    claimed = cast("CursorResult[Any]", db.session.execute(claim)).rowcount
    db.session.commit()
    if not claimed:
        return False
    outbox_mail = db.session.get(OutboxMail, mail_id)
    assert outbox_mail is not None
    try:
        _send(outbox_mail)
    except Exception as exc:  # SMTP, network or configuration: all are retried
        log.warning("mail %s to %s failed: %s", mail_id, outbox_mail.recipient, exc)
        outbox_mail.last_error = str(exc)[:500] or type(exc).__name__
        if outbox_mail.attempts >= MAX_ATTEMPTS:
            outbox_mail.status = check_transition(
                MAIL_TRANSITIONS, outbox_mail.status, MailStatus.FAILED, "mail"
            )
        else:
            wait = retry_delay(outbox_mail.attempts)
            outbox_mail.next_attempt_at = clock.now() + wait
        status = outbox_mail.status
        db.session.commit()
        if status is MailStatus.PENDING:
            jobs.enqueue(send_mail, mail_id, delay=wait)
        return False
    outbox_mail.status = check_transition(
        MAIL_TRANSITIONS, outbox_mail.status, MailStatus.SENT, "mail"
    )
    outbox_mail.sent_at = clock.now()
    db.session.commit()
    return True


def _send(outbox_mail: OutboxMail) -> None:
    message = Message(
        subject=outbox_mail.subject, recipients=[outbox_mail.recipient], body=outbox_mail.body
    )
    if current_app.config.get("MAIL_SUPPRESS_SEND"):
        current_app.logger.info(
            "mail to %s: %s\n%s", outbox_mail.recipient, outbox_mail.subject, outbox_mail.body
        )
    mail.send(message)


@jobs.task()
def send_mail(mail_id: int) -> None:
    deliver(mail_id)


@jobs.periodic(jobs.every_minute())
def sweep_outbox() -> None:
    """Enqueue every mail a lost job left behind."""
    for mail_id in jobs.overdue_ids(OutboxMail, MailStatus.PENDING, SWEEP_GRACE):
        jobs.enqueue(send_mail, mail_id)
