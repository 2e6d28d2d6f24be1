"""Jobs queued in a transaction leave only when the whole transaction commits."""

from __future__ import annotations

from sqlalchemy import text


def test_a_savepoint_released_sends_nothing_until_the_real_commit(app, db, monkeypatch):
    import jobs
    from notifications.tasks import send_mail

    sent: list[tuple] = []
    monkeypatch.setattr(jobs, "enqueue", lambda job, *args, **kw: sent.append(args) or True)
    session = db.session()
    jobs.enqueue_after_commit(session, send_mail, 1)
    with session.begin_nested():  # a booking's savepoint, say
        jobs.enqueue_after_commit(session, send_mail, 2)
    assert sent == []  # released, not committed
    savepoint = session.begin_nested()
    savepoint.rollback()
    db.session.commit()
    assert sent == [(1,), (2,)]


def test_a_rollback_of_the_whole_transaction_sends_nothing(app, db, monkeypatch):
    import jobs
    from notifications.tasks import send_mail

    sent: list[tuple] = []
    monkeypatch.setattr(jobs, "enqueue", lambda job, *args, **kw: sent.append(args) or True)
    db.session.execute(text("SELECT 1"))  # a transaction under way
    jobs.enqueue_after_commit(db.session(), send_mail, 3)
    db.session.rollback()
    db.session.commit()
    assert sent == []


def test_mails_queued_without_a_flush_leave_as_one_job_with_their_ids(app, db, monkeypatch):
    """`queue_mail` does not flush to learn the row's id: the job gets it at commit, and a
    mail rolled back with its savepoint drops out of the batch."""
    import jobs
    from notifications.models import OutboxMail
    from notifications.services import queue_mail

    sent: list[tuple] = []
    monkeypatch.setattr(jobs, "enqueue", lambda job, *args, **kw: sent.append(args) or True)
    queue_mail("a@example.com", "First", "one")
    assert db.session.new  # still pending: nothing was flushed for it
    savepoint = db.session.begin_nested()
    queue_mail("b@example.com", "Rolled back", "two")
    savepoint.rollback()
    queue_mail("c@example.com", "Third", "three")
    db.session.commit()
    rows = db.session.execute(
        db.select(OutboxMail.id, OutboxMail.recipient).order_by(OutboxMail.id)
    ).all()
    assert [recipient for _, recipient in rows] == ["a@example.com", "c@example.com"]
    assert sent == [tuple(mail_id for mail_id, _ in rows)]


def test_a_job_whose_only_row_was_rolled_back_is_not_sent(app, db, monkeypatch):
    import jobs
    from notifications.models import OutboxMail
    from notifications.tasks import send_mail

    sent: list[tuple] = []
    monkeypatch.setattr(jobs, "enqueue", lambda job, *args, **kw: sent.append(args) or True)
    db.session.execute(text("SELECT 1"))
    savepoint = db.session.begin_nested()
    mail = OutboxMail(recipient="x@example.com", subject="s", body="b")
    db.session.add(mail)
    jobs.enqueue_after_commit(db.session(), send_mail, jobs.RowId(mail))
    savepoint.rollback()
    db.session.commit()
    assert sent == []
