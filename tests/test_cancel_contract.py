"""Either party calls off a pending, unpaid contract from its page."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from markupsafe import escape
from sqlalchemy import select

from contracts.models import Contract, ContractStatus, PaymentStatus
from tests.conftest import login

REASON = "We could not agree on a schedule."


@pytest.fixture
def coach(make_user):
    return make_user("coach", name="Maya Coach")


@pytest.fixture
def student(make_user):
    return make_user("student", name="Ana Student")


@pytest.fixture
def contract_id(app, db, coach, student, make_proposal) -> int:
    """A pending, unpaid contract between `coach` and `student`."""
    from contracts.services import accept_proposal

    contract = accept_proposal(make_proposal(coach, student), db.session.merge(student))
    db.session.commit()
    return contract.id


@pytest.fixture
def paid_contract_id(app, db, contract_id) -> int:
    from contracts import lifecycle

    with app.test_request_context():
        lifecycle.mark_paid(
            db.session.get(Contract, contract_id),
            paid_at=datetime(2026, 1, 5, tzinfo=UTC),
            actor_label="test",
            details={},
        )
        db.session.commit()
    return contract_id


def audit_entries(db, contract_id: int) -> list:
    from audit.models import AuditEntry

    query = select(AuditEntry).filter_by(object_type="contracts", object_id=contract_id)
    return list(db.session.scalars(query.order_by(AuditEntry.id)))


def notes_of(db, user) -> list[str]:
    """What `user` was told about the contract, past the proposal it came from.

    Sending and accepting the proposal (the fixture) told each party once already.
    """
    from notifications.models import Notification

    return list(
        db.session.scalars(
            select(Notification.message)
            .filter_by(user_id=user.id)
            .where(Notification.link.not_like("/contracts/proposals/%"))
            .where(Notification.message.not_like("% accepted your proposal %"))
            .order_by(Notification.id)
        )
    )


def fresh(db, contract_id: int) -> Contract:
    db.session.expire_all()
    return db.session.get(Contract, contract_id)


@pytest.mark.parametrize("who", ["student", "coach"])
def test_either_party_cancels_and_the_other_is_told(client, db, coach, student, contract_id, who):
    actor, other = (student, coach) if who == "student" else (coach, student)
    login(client, actor)
    response = client.submit(f"/contracts/{contract_id}/cancel", {"reason": f"  {REASON} "})
    assert response.status_code == 302
    assert response.headers["Location"] == f"/contracts/{contract_id}"
    contract = fresh(db, contract_id)
    assert contract.status is ContractStatus.CANCELLED
    assert contract.payment_status is PaymentStatus.PENDING and contract.paid_at is None
    [entry] = audit_entries(db, contract_id)
    assert (entry.action, entry.actor_id) == ("contract.cancelled", actor.id)
    assert entry.after["reason"] == REASON
    assert [f"{actor.name} cancelled the unpaid contract “Interview coaching”: {REASON}"] == (
        notes_of(db, other)
    )
    assert notes_of(db, actor) == []
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Contract cancelled." in page


def test_the_page_offers_the_cancel_form_to_both_parties(client, coach, student, contract_id):
    for user in (coach, student):
        login(client, user)
        page = client.get(f"/contracts/{contract_id}").get_data(as_text=True)
        assert f'action="/contracts/{contract_id}/cancel"' in page
        assert 'name="reason"' in page and "Cancel this contract" in page
        client.submit("/auth/logout")


def test_a_stranger_gets_404_and_changes_nothing(client, db, make_user, contract_id):
    for role in ("student", "coach", "admin"):
        login(client, make_user(role))
        response = client.submit(f"/contracts/{contract_id}/cancel", {"reason": REASON})
        assert response.status_code == 404, role
        client.submit("/auth/logout")
    assert fresh(db, contract_id).status is ContractStatus.PENDING
    assert audit_entries(db, contract_id) == []


@pytest.mark.parametrize("reason", ["", "   "])
def test_a_missing_reason_shows_an_error_and_changes_nothing(
    client, db, student, contract_id, reason
):
    login(client, student)
    response = client.submit(f"/contracts/{contract_id}/cancel", {"reason": reason})
    assert response.status_code == 200
    assert "Say why you are cancelling." in response.get_data(as_text=True)
    assert fresh(db, contract_id).status is ContractStatus.PENDING
    assert audit_entries(db, contract_id) == []


def test_a_too_long_reason_is_refused(client, db, coach, contract_id):
    login(client, coach)
    response = client.submit(f"/contracts/{contract_id}/cancel", {"reason": "x" * 201})
    assert "Field cannot be longer than 200 characters." in response.get_data(as_text=True)
    assert fresh(db, contract_id).status is ContractStatus.PENDING


def test_cancelling_needs_a_csrf_token(client, db, student, contract_id):
    login(client, student)
    response = client.post(f"/contracts/{contract_id}/cancel", data={"reason": REASON})
    assert response.status_code == 400
    assert fresh(db, contract_id).status is ContractStatus.PENDING


@pytest.mark.parametrize("who", ["student", "coach"])
def test_a_paid_contract_is_refused_with_a_message(
    client, db, coach, student, paid_contract_id, who
):
    login(client, student if who == "student" else coach)
    page = client.get(f"/contracts/{paid_contract_id}").get_data(as_text=True)
    assert "Cancel this contract" not in page
    response = client.submit(
        f"/contracts/{paid_contract_id}/cancel", {"reason": REASON}, follow_redirects=True
    )
    assert response.status_code == 200
    assert "This contract is paid; it can only be closed by a refund" in response.get_data(
        as_text=True
    )
    contract = fresh(db, paid_contract_id)
    assert (contract.status, contract.payment_status) == (ContractStatus.ACTIVE, PaymentStatus.PAID)
    assert [e.action for e in audit_entries(db, paid_contract_id)] == ["contract.paid"]


def test_a_cancelled_contract_is_not_cancelled_twice(client, db, coach, student, contract_id):
    login(client, student)
    client.submit(f"/contracts/{contract_id}/cancel", {"reason": REASON})
    client.submit("/auth/logout")
    login(client, coach)
    # Without a reason too: the refusal comes first, not a form error on a form not shown.
    response = client.submit(f"/contracts/{contract_id}/cancel", {}, follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "This contract is cancelled; only a pending, unpaid contract can be cancelled." in page
    assert "Cancel this contract" not in page
    assert [e.action for e in audit_entries(db, contract_id)] == ["contract.cancelled"]
    assert notes_of(db, coach) == [
        f"Ana Student cancelled the unpaid contract “Interview coaching”: {REASON}"
    ]


def test_a_cancelled_contract_shows_no_payment_instead_of_pending(
    client, coach, student, contract_id
):
    login(client, student)
    before = client.get(f"/contracts/{contract_id}").get_data(as_text=True)
    assert 'data-status="pending"' in before  # the contract's status and its payment's
    client.submit(f"/contracts/{contract_id}/cancel", {"reason": REASON})
    for user in (student, coach):
        login(client, user)
        page = client.get(f"/contracts/{contract_id}").get_data(as_text=True)
        payment = page.split('id="payment-status"', 1)[1].split("</div>", 1)[0]
        assert "None — cancelled before payment" in payment
        assert 'data-status="pending"' not in page and "Pending" not in payment
        assert str(escape("Pay $200.00")) not in page
        # The list of contracts says the same.
        listing = client.get("/contracts/").get_data(as_text=True)
        assert "None — cancelled before payment" in listing
        client.submit("/auth/logout")


def test_a_paid_contract_still_shows_its_payment_status(client, student, paid_contract_id):
    login(client, student)
    page = client.get(f"/contracts/{paid_contract_id}").get_data(as_text=True)
    payment = page.split('id="payment-status"', 1)[1].split("</div>", 1)[0]
    assert 'data-status="paid"' in payment and "cancelled" not in payment
