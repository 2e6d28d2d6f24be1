"""contracts.lifecycle: the one place a contract's status changes, along its tables."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select


@pytest.fixture
def contract(app, db, make_user, make_proposal):
    from contracts.services import accept_proposal

    coach = make_user("coach", name="Maya Coach")
    student = make_user("student", name="Ana Student")
    contract = accept_proposal(make_proposal(coach, student), db.session.merge(student))
    db.session.commit()
    return contract


def audit_actions(db, contract) -> list[str]:
    from audit.models import AuditEntry

    query = select(AuditEntry.action).filter_by(object_type="contracts", object_id=contract.id)
    return list(db.session.scalars(query.order_by(AuditEntry.id)))


def test_an_unpaid_contract_is_cancelled_and_the_other_party_told(app, db, contract):
    from contracts import lifecycle
    from notifications.models import Notification

    told_before = db.session.scalar(select(func.max(Notification.id)))  # the proposal's
    with app.test_request_context():
        lifecycle.cancel(contract, by=contract.coach, reason="the student moved abroad")
        db.session.commit()
    assert contract.status.value == "cancelled"
    assert audit_actions(db, contract) == ["contract.cancelled"]
    [note] = db.session.scalars(select(Notification).where(Notification.id > told_before)).all()
    assert note.user_id == contract.student_id and "moved abroad" in note.message


def test_a_paid_contract_is_not_cancelled_but_refunded(app, db, contract):
    from contracts import lifecycle
    from contracts.money import Received

    with app.test_request_context():
        lifecycle.mark_paid(
            contract, paid_at=datetime(2026, 1, 5, tzinfo=UTC), actor_label="test", details={}
        )
        with pytest.raises(ValueError, match="refund"):
            lifecycle.cancel(contract, by=contract.coach, reason="changed my mind")
        lifecycle.record_refund(
            contract,
            received=Received(contract.total_amount, 0, contract.total_amount),
            consumed_sessions=0,
            actor_label="test",
        )
        db.session.commit()
    assert (contract.status.value, contract.payment_status.value) == ("refunded", "refunded")
    assert audit_actions(db, contract) == ["contract.paid", "contract.refund_recorded"]


def test_a_move_the_table_does_not_list_is_refused_and_changes_nothing(app, db, contract):
    from contracts import lifecycle
    from database.states import TransitionError

    with app.test_request_context(), pytest.raises(TransitionError, match="pending"):
        lifecycle.complete(contract)
    db.session.rollback()
    db.session.refresh(contract)
    assert contract.status.value == "pending" and audit_actions(db, contract) == []


def test_a_second_dispute_is_no_move(app, db, contract):
    from contracts import lifecycle

    with app.test_request_context():
        lifecycle.mark_paid(
            contract, paid_at=datetime(2026, 1, 5, tzinfo=UTC), actor_label="test", details={}
        )
        assert lifecycle.open_dispute(contract, actor_label="stripe", details={"id": "dp_1"})
        assert not lifecycle.open_dispute(contract, actor_label="stripe", details={})
        db.session.commit()
    assert (contract.status.value, contract.payment_status.value) == ("disputed", "disputed")
    assert audit_actions(db, contract) == ["contract.paid", "contract.disputed"]
