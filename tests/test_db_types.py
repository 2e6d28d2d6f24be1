"""The statement helpers the webhook's hot path relies on, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError


def _event(event_id: str) -> dict:
    from db_types import utcnow

    return {"stripe_event_id": event_id, "type": "test.event", "received_at": utcnow()}


def test_a_failing_write_in_one_round_trip_raises_and_nothing_is_kept(db):
    from db_types import one_round_trip, table_of
    from payments.models import WebhookEvent

    statement = insert(table_of(WebhookEvent)).inline()
    with pytest.raises(IntegrityError), one_round_trip(db.session):
        db.session.execute(statement, _event("evt_once"))
        db.session.execute(statement, _event("evt_once"))  # the unique id refuses it
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(WebhookEvent)) == 0


def test_writes_in_one_round_trip_all_land(db):
    from db_types import one_round_trip, table_of
    from payments.models import WebhookEvent

    statement = insert(table_of(WebhookEvent)).inline()
    with one_round_trip(db.session):
        for n in range(3):
            db.session.execute(statement, _event(f"evt_{n}"))
    db.session.commit()
    ids = db.session.scalars(select(WebhookEvent.stripe_event_id).order_by(WebhookEvent.id))
    assert list(ids) == ["evt_0", "evt_1", "evt_2"]


def test_update_row_sets_the_values_and_stamps_updated_at(db, make_proposal):
    from contracts.models import Contract, PaymentStatus, Proposal
    from contracts.services import accept_proposal
    from db_types import table_of, update_row

    proposal = db.session.get(Proposal, make_proposal())
    contract = accept_proposal(proposal.id, proposal.student)
    db.session.commit()
    contract_id, stamped = contract.id, contract.updated_at

    update_row(db.session, table_of(Contract), contract_id, payment_status=PaymentStatus.FAILED)
    db.session.commit()
    db.session.expire_all()
    contract = db.session.get(Contract, contract_id)
    assert contract.payment_status is PaymentStatus.FAILED
    assert contract.updated_at > stamped


def test_foreign_keys_are_enforced_on_every_database(db):
    from db_types import table_of, utcnow
    from notifications.models import Notification

    orphan = {"user_id": 987654, "message": "for nobody", "link": None, "created_at": utcnow()}
    with pytest.raises(IntegrityError):
        db.session.execute(insert(table_of(Notification)), orphan)
        db.session.flush()
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Notification)) == 0


def test_sqlite_runs_in_write_ahead_log_mode(db):
    from sqlalchemy import text

    if db.engine.dialect.name != "sqlite":
        pytest.skip("a setting of SQLite's")
    assert db.session.scalar(text("PRAGMA journal_mode")) == "wal"
    assert db.session.scalar(text("PRAGMA foreign_keys")) == 1
