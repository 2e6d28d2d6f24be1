"""Jobs that send the outbox's mail: one job per transaction's mails after commit, and a
sweep for lost ones.

A job claims its mails in one statement, sends them over one connection to the mail
server, and records every result in one transaction. Each mail carries a Message-ID on
the app's own domain (`APP_BASE_URL`), so building one asks no DNS.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from email.utils import make_msgid
from urllib.parse import urlsplit

from flask import current_app
from flask_mailman import EmailMessage
from sqlalchemy import select, update

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


def deliver(*mail_ids: int) -> int:
    """Send the outbox mails among `mail_ids` that are due and that nobody else is sending;
    the number sent.

    The claim (one conditional UPDATE, committed) lets exactly one job send each mail;
    the sending happens outside any transaction, over one connection, and the results
    are recorded after, in one transaction.
    """
    moment = clock.now()
    claimed_ids = list(
        db.session.scalars(
            update(OutboxMail)
            .where(
                OutboxMail.id.in_(mail_ids),
                OutboxMail.status == MailStatus.PENDING,
                OutboxMail.next_attempt_at <= moment,
            )
            .values(next_attempt_at=moment + CLAIM, attempts=OutboxMail.attempts + 1)
            .returning(OutboxMail.id)
        )
    )
    db.session.commit()
    if not claimed_ids:
        return 0
    claimed = list(
        db.session.scalars(
            select(OutboxMail).where(OutboxMail.id.in_(claimed_ids)).order_by(OutboxMail.id)
        )
    )
    failures = _send(claimed)
    retries: list[tuple[int, timedelta]] = []
    for outbox_mail in claimed:
        failure = failures.get(outbox_mail.id)
        if failure is None:
            outbox_mail.status = check_transition(
                MAIL_TRANSITIONS, outbox_mail.status, MailStatus.SENT, "mail"
            )
            outbox_mail.sent_at = clock.now()
            continue
        log.warning("mail %s to %s failed: %s", outbox_mail.id, outbox_mail.recipient, failure)
        outbox_mail.last_error = str(failure)[:500] or type(failure).__name__
        if outbox_mail.attempts >= MAX_ATTEMPTS:
            outbox_mail.status = check_transition(
                MAIL_TRANSITIONS, outbox_mail.status, MailStatus.FAILED, "mail"
            )
        else:
            wait = retry_delay(outbox_mail.attempts)
            outbox_mail.next_attempt_at = clock.now() + wait
            retries.append((outbox_mail.id, wait))
    db.session.commit()
    for mail_id, wait in retries:
        jobs.enqueue(send_mail, mail_id, delay=wait)
    return len(claimed) - len(failures)


def _send(claimed: list[OutboxMail]) -> dict[int, Exception]:
    """Send each mail over one connection; the failures by mail id."""
    failures: dict[int, Exception] = {}
    domain = urlsplit(current_app.config["APP_BASE_URL"]).hostname or "coachpact.invalid"
    try:
        with mail.get_connection() as connection:
            for outbox_mail in claimed:
                message = EmailMessage(
                    subject=outbox_mail.subject,
                    body=outbox_mail.body,
                    to=[outbox_mail.recipient],
                    headers={"Message-ID": make_msgid(domain=domain)},
                    connection=connection,
                )
                try:
                    message.send()
                except Exception as exc:  # this mail's address or content: retried alone
                    failures[outbox_mail.id] = exc
    except Exception as exc:  # the server: unreachable, refused the login, dropped us
        for outbox_mail in claimed:
            failures.setdefault(outbox_mail.id, exc)
    return failures


@jobs.task()
def send_mail(*mail_ids: int) -> None:
    deliver(*mail_ids)


@jobs.periodic(jobs.every_minute())
def sweep_outbox() -> None:
    """Send every mail a lost job left behind (one job for all of them)."""
    overdue = jobs.overdue_ids(OutboxMail, MailStatus.PENDING, SWEEP_GRACE)
    if overdue:
        jobs.enqueue(send_mail, *overdue)
