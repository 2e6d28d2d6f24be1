"""Notifications: the in-app list and the mail outbox, sent by a job after commit."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select


def outbox_rows(db):
    from notifications.models import OutboxMail

    db.session.expire_all()
    return list(db.session.scalars(select(OutboxMail).order_by(OutboxMail.id)))


class FlakyConnection:
    """The locmem backend, refusing the sends it is told to (a mail server's trouble)."""

    def __init__(self, *failures: Exception | None) -> None:
        self.failures = list(failures)
        self.opened = 0

    def install(self, monkeypatch) -> None:
        from flask_mailman.backends.locmem import EmailBackend

        real_send, real_open = EmailBackend.send_messages, EmailBackend.open
        flaky = self

        def send_messages(backend, messages):
            failure = flaky.failures.pop(0) if flaky.failures else None
            if failure is not None:
                raise failure
            return real_send(backend, messages)

        def open_connection(backend):
            flaky.opened += 1
            return real_open(backend)

        monkeypatch.setattr(EmailBackend, "send_messages", send_messages)
        monkeypatch.setattr(EmailBackend, "open", open_connection)


def test_a_rolled_back_transaction_sends_no_mail(app, db, make_user, sent_mail):
    from notifications.models import Notification
    from notifications.services import notify

    user = db.session.merge(make_user())
    with app.test_request_context():
        notify(user, "Something that will not happen.")
        db.session.rollback()
    assert sent_mail == []
    assert outbox_rows(db) == []
    assert db.session.scalar(select(func.count()).select_from(Notification)) == 0


def test_a_committed_notification_is_mailed_once(app, db, make_user, sent_mail):
    from notifications.services import notify
    from notifications.tasks import sweep_outbox

    user = db.session.merge(make_user(email="reader@example.com"))
    with app.test_request_context():
        notify(user, "Your contract is paid.", link="/contracts/7", subject="Paid")
        db.session.commit()
        sweep_outbox()  # finds nothing left to send
    (message,) = sent_mail
    assert message.to == ["reader@example.com"] and message.subject == "Paid"
    assert message.body.endswith(f"{app.config['APP_BASE_URL']}/contracts/7")
    # The Message-ID is on the app's own domain: building it asks no DNS.
    assert message.message()["Message-ID"].endswith("@127.0.0.1>")
    [row] = outbox_rows(db)
    assert (row.status.value, row.attempts) == ("sent", 1)


def test_the_mails_of_one_transaction_go_in_one_job_over_one_connection(
    app, db, make_user, sent_mail, monkeypatch
):
    import jobs
    from notifications.services import notify

    connection = FlakyConnection()
    connection.install(monkeypatch)
    enqueued = []
    real_enqueue = jobs.enqueue
    def enqueue(job, *args, **options):
        enqueued.append(args)
        return real_enqueue(job, *args, **options)

    monkeypatch.setattr(jobs, "enqueue", enqueue)
    users = [db.session.merge(make_user()) for _ in range(3)]
    with app.test_request_context():
        for user in users:
            notify(user, "Your contract is paid.")
        db.session.commit()
    assert len(enqueued) == 1 and len(enqueued[0]) == 3
    assert connection.opened == 1
    assert sorted(m.to[0] for m in sent_mail) == sorted(u.email for u in users)
    assert {(r.status.value, r.attempts) for r in outbox_rows(db)} == {("sent", 1)}


def test_one_refused_mail_of_a_batch_is_retried_alone(app, db, make_user, sent_mail, monkeypatch):
    from notifications.services import notify

    FlakyConnection(None, OSError("mailbox unavailable"), None).install(monkeypatch)
    users = [db.session.merge(make_user()) for _ in range(3)]
    with app.test_request_context():
        for user in users:
            notify(user, "Your contract is paid.")
        db.session.commit()
    rows = outbox_rows(db)
    assert [r.status.value for r in rows] == ["sent", "pending", "sent"]
    assert "mailbox unavailable" in rows[1].last_error
    assert sorted(m.to[0] for m in sent_mail) == sorted([users[0].email, users[2].email])


def test_a_failed_send_is_retried_with_backoff_and_sent_once(
    app, db, make_user, monkeypatch, clock, sent_mail
):
    from notifications.services import notify
    from notifications.tasks import sweep_outbox

    FlakyConnection(OSError("connection refused by the mail server")).install(monkeypatch)
    user = db.session.merge(make_user())
    with app.test_request_context():
        notify(user, "Your session is tomorrow.")
        db.session.commit()
        [row] = outbox_rows(db)
        assert (row.status.value, row.attempts) == ("pending", 1)
        assert "connection refused" in row.last_error
        sweep_outbox()  # not due yet: the backoff holds it
        assert sent_mail == []
        clock.advance(timedelta(minutes=2))
        sweep_outbox()
        sweep_outbox()
    assert len(sent_mail) == 1
    [row] = outbox_rows(db)
    assert (row.status.value, row.attempts) == ("sent", 2)


def test_a_mail_that_never_goes_through_is_marked_failed(app, db, make_user, monkeypatch, clock):
    from notifications.services import notify
    from notifications.tasks import MAX_ATTEMPTS, sweep_outbox

    FlakyConnection(*[OSError("no route to the mail server")] * MAX_ATTEMPTS).install(monkeypatch)
    user = db.session.merge(make_user())
    with app.test_request_context():
        notify(user, "Hello.")
        db.session.commit()
        for _ in range(MAX_ATTEMPTS):
            clock.advance(timedelta(hours=2))
            sweep_outbox()
    [row] = outbox_rows(db)
    assert (row.status.value, row.attempts) == ("failed", MAX_ATTEMPTS)


def test_a_long_message_gives_a_subject_cut_at_a_word_boundary(app, db, make_user, sent_mail):
    from notifications.services import notify

    user = db.session.merge(make_user(email="long@example.com"))
    message = "Ana Student asked for a refund on “Career coaching with a long title” — decide."
    with app.test_request_context():
        notify(user, message)
        db.session.commit()
    [mail_sent] = sent_mail
    assert mail_sent.subject == (
        "Coachpact: Ana Student asked for a refund on “Career coaching with a…")
    assert "coachin“" not in mail_sent.subject and not mail_sent.subject.endswith("coachin")


def test_shorten_keeps_short_text_and_whole_words():
    from notifications.services import shorten

    assert shorten("Your contract is paid.", 60) == "Your contract is paid."
    assert shorten("one two three", 8) == "one two…"
    assert shorten("one two three", 7) == "one…"
    assert len(shorten("word " * 40, 60)) <= 60
