"""What every model shares: UTC columns, foreign keys, row locks, SQLite's settings, the clock."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError


def test_foreign_keys_are_enforced_on_every_database(db):
    from notifications.models import Notification

    db.session.add(Notification(user_id=987654, message="for nobody"))
    with pytest.raises(IntegrityError):
        db.session.flush()
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Notification)) == 0


def test_sqlite_runs_in_write_ahead_log_mode(db):
    from sqlalchemy import text

    if db.engine.dialect.name != "sqlite":
        pytest.skip("a setting of SQLite's")
    assert db.session.scalar(text("PRAGMA journal_mode")) == "wal"
    assert db.session.scalar(text("PRAGMA foreign_keys")) == 1


def test_times_come_back_aware_in_utc_and_naive_ones_are_refused(db, make_user):
    from accounts.models import User

    user = db.session.get(User, make_user().id)
    assert user.created_at.tzinfo is UTC
    user.created_at = datetime(2026, 1, 1, 12, 0)  # naive
    with pytest.raises(Exception, match="naive datetime"):
        db.session.flush()
    db.session.rollback()


def test_column_defaults_read_the_one_clock(db, make_user, clock):
    moment = datetime(2030, 3, 1, 9, 30, tzinfo=UTC)
    clock.freeze(moment)
    assert make_user().created_at == moment
    clock.advance(timedelta(hours=2))
    assert make_user().created_at == moment + timedelta(hours=2)


def test_a_locked_row_makes_a_second_writer_wait_until_commit(app, db, make_user):
    """lock_one holds the row (PostgreSQL) or the write lock (SQLite) until the commit."""
    from accounts.models import User
    from database.locking import lock_one

    user_id = make_user(name="Before").id
    locked = threading.Event()
    release = threading.Event()
    order: list[str] = []

    def holder():
        with app.app_context():
            user = lock_one(db.session, select(User).where(User.id == user_id))
            locked.set()
            release.wait(10)
            user.name = "Holder"
            order.append("holder commits")
            db.session.commit()

    def second():
        locked.wait(10)
        with app.app_context():
            user = lock_one(db.session, select(User).where(User.id == user_id))
            order.append(f"second reads {user.name}")
            db.session.commit()

    threads = [threading.Thread(target=holder), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    locked.wait(10)
    threading.Timer(0.3, release.set).start()
    for thread in threads:
        thread.join(20)
    assert order == ["holder commits", "second reads Holder"]
