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
