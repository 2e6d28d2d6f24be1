"""Notifications: the in-app list and the mail outbox, sent by a job after commit."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select


def outbox_rows(db):
    from notifications.models import OutboxMail

    db.session.expire_all()
    return list(db.session.scalars(select(OutboxMail).order_by(OutboxMail.id)))


def test_a_rolled_back_transaction_sends_no_mail(app, db, make_user):
    from extensions import mail
    from notifications.models import Notification
    from notifications.services import notify

    user = db.session.merge(make_user())
    with mail.record_messages() as sent, app.test_request_context():
        notify(user, "Something that will not happen.")
        db.session.rollback()
    assert sent == []
    assert outbox_rows(db) == []
    assert db.session.scalar(select(func.count()).select_from(Notification)) == 0


def test_a_committed_notification_is_mailed_once(app, db, make_user):
    from extensions import mail
    from notifications.services import notify
    from notifications.tasks import sweep_outbox

    user = db.session.merge(make_user(email="reader@example.com"))
    with mail.record_messages() as sent, app.test_request_context():
        notify(user, "Your contract is paid.", link="/contracts/7", subject="Paid")
        db.session.commit()
        sweep_outbox()  # finds nothing left to send
    (message,) = sent
    assert message.recipients == ["reader@example.com"] and message.subject == "Paid"
    assert message.body.endswith(f"{app.config['APP_BASE_URL']}/contracts/7")
    [row] = outbox_rows(db)
    assert (row.status.value, row.attempts) == ("sent", 1)


def test_a_failed_send_is_retried_with_backoff_and_sent_once(
    app, db, make_user, monkeypatch, clock
):
    from extensions import mail
    from notifications.services import notify
    from notifications.tasks import sweep_outbox

    real_send = mail.send
    failures = iter([OSError("connection refused by the mail server")])

    def flaky_send(message):
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return real_send(message)

    monkeypatch.setattr(mail, "send", flaky_send)
    user = db.session.merge(make_user())
    with mail.record_messages() as sent, app.test_request_context():
        notify(user, "Your session is tomorrow.")
        db.session.commit()
        [row] = outbox_rows(db)
        assert (row.status.value, row.attempts) == ("pending", 1)
        assert "connection refused" in row.last_error
        sweep_outbox()  # not due yet: the backoff holds it
        assert sent == []
        clock.advance(timedelta(minutes=2))
        sweep_outbox()
        sweep_outbox()
    assert len(sent) == 1
    [row] = outbox_rows(db)
    assert (row.status.value, row.attempts) == ("sent", 2)


def test_a_mail_that_never_goes_through_is_marked_failed(app, db, make_user, monkeypatch, clock):
    from extensions import mail
    from notifications.services import notify
    from notifications.tasks import MAX_ATTEMPTS, sweep_outbox

    def always_fails(message):
        raise OSError("no route to the mail server")

    monkeypatch.setattr(mail, "send", always_fails)
    user = db.session.merge(make_user())
    with app.test_request_context():
        notify(user, "Hello.")
        db.session.commit()
        for _ in range(MAX_ATTEMPTS):
            clock.advance(timedelta(hours=2))
            sweep_outbox()
    [row] = outbox_rows(db)
    assert (row.status.value, row.attempts) == ("failed", MAX_ATTEMPTS)


def test_a_long_message_gives_a_subject_cut_at_a_word_boundary(app, db, make_user):
    from extensions import mail
    from notifications.services import notify

    user = db.session.merge(make_user(email="long@example.com"))
    message = "Ana Student asked for a refund on “Career coaching with a long title” — decide."
    with mail.record_messages() as sent, app.test_request_context():
        notify(user, message)
        db.session.commit()
    [mail_sent] = sent
    assert mail_sent.subject == (
        "Coachpact: Ana Student asked for a refund on “Career coaching with a…")
    assert "coachin“" not in mail_sent.subject and not mail_sent.subject.endswith("coachin")


def test_shorten_keeps_short_text_and_whole_words():
    from notifications.services import shorten

    assert shorten("Your contract is paid.", 60) == "Your contract is paid."
    assert shorten("one two three", 8) == "one two…"
    assert shorten("one two three", 7) == "one…"
    assert len(shorten("word " * 40, 60)) <= 60
