"""Both parties hear about what concerns them: in the app and by mail, each once.

The student: a proposal received, a payment confirmed. The coach: a proposal
accepted or declined, a contract paid. Both: a second payment refunded.

Jobs are queued here, not run: the test applies each webhook event as a
consumer would, and a mail is an outbox row (its sending has tests of its own).
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from tests.conftest import login
from tests.payments.conftest import API_KEY, WEBHOOK_SECRET, deliver

PROPOSAL_FORM = {
    "title": "Interview coaching",
    "description": "Mock interviews with written feedback.",
    "session_count": "4",
    "minutes_per_session": "60",
    "currency": "usd",
    "price_per_session": "50.00",
}


@pytest.fixture
def app_overrides(tmp_path) -> dict[str, Any]:
    return {
        "STRIPE_SECRET_KEY": API_KEY,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        # Nothing here may reach Stripe: the refund of a duplicate stays queued.
        "STRIPE_API_BASE": "http://127.0.0.1:9",
        "STRIPE_MAX_NETWORK_RETRIES": 0,
        "JOBS_IMMEDIATE": False,
        "REDIS_URL": None,
        "JOBS_SQLITE_PATH": str(tmp_path / "jobs.sqlite3"),
        "JOBS_QUEUE_NAME": "tests",
    }


@pytest.fixture
def coach(make_user):
    return make_user("coach", email="coach@example.com", name="Maya Coach")


@pytest.fixture
def student(make_user):
    return make_user("student", email="student@example.com", name="Ana Student")


@pytest.fixture
def client_of(app):
    """A logged-in test client for `user` (one per party)."""

    def make(user):
        client = app.test_client()
        login(client, user)
        return client

    return make


def told(db, user) -> list[tuple[str, str | None]]:
    """The (message, link) of every notification `user` got, oldest first."""
    from notifications.models import Notification

    db.session.expire_all()
    rows = db.session.execute(
        select(Notification.message, Notification.link)
        .filter_by(user_id=user.id)
        .order_by(Notification.id)
    )
    return [tuple(row) for row in rows]


def mailed(db, user) -> list[tuple[str, str]]:
    """The (subject, body) of every outbox mail to `user`, oldest first."""
    from notifications.models import OutboxMail

    db.session.expire_all()
    rows = db.session.execute(
        select(OutboxMail.subject, OutboxMail.body)
        .filter_by(recipient=user.email)
        .order_by(OutboxMail.id)
    )
    return [tuple(row) for row in rows]


def proposal_id_of(db) -> int:
    from contracts.models import Proposal

    db.session.expire_all()
    return db.session.scalar(select(Proposal.id))


# --- proposals ---------------------------------------------------------------------


def test_the_student_is_told_once_of_a_proposal_received(app, db, client_of, coach, student):
    response = client_of(coach).submit(
        "/contracts/proposals/new", PROPOSAL_FORM | {"student_email": student.email}
    )
    assert response.status_code == 302
    proposal_id = proposal_id_of(db)
    [(message, link)] = told(db, student)
    assert message == (
        "Maya Coach sent you a proposal: “Interview coaching”, 4 sessions for $200.00. "
        "Have a look, and accept it when it suits you."
    )
    assert link == f"/contracts/proposals/{proposal_id}"
    [(subject, body)] = mailed(db, student)
    assert subject == "Coachpact: a proposal from Maya Coach"
    assert f"{app.config['APP_BASE_URL']}/contracts/proposals/{proposal_id}" in body
    assert told(db, coach) == [] and mailed(db, coach) == []


def test_the_coach_is_told_once_when_the_proposal_is_accepted(
    db, client_of, make_proposal, coach, student
):
    from contracts.models import Contract

    proposal_id = make_proposal(coach, student)
    before = told(db, student)
    ana = client_of(student)
    assert ana.submit(f"/contracts/proposals/{proposal_id}/accept").status_code == 302
    # A second press is refused by the proposal's transitions: nobody is told again.
    ana.submit(f"/contracts/proposals/{proposal_id}/accept")
    contract_id = db.session.scalar(select(Contract.id))
    [(message, link)] = told(db, coach)
    assert message == (
        "Ana Student accepted your proposal “Interview coaching”. "
        "We will tell you as soon as it is paid."
    )
    assert link == f"/contracts/{contract_id}"
    [(subject, _)] = mailed(db, coach)
    assert subject == "Coachpact: “Interview coaching” was accepted"
    assert told(db, student) == before


def test_the_coach_is_told_once_when_the_proposal_is_declined(
    db, client_of, make_proposal, coach, student
):
    proposal_id = make_proposal(coach, student)
    before = told(db, student)
    ana = client_of(student)
    assert ana.submit(f"/contracts/proposals/{proposal_id}/decline").status_code == 302
    ana.submit(f"/contracts/proposals/{proposal_id}/decline")  # refused: declined already
    [(message, link)] = told(db, coach)
    assert message == "Ana Student declined your proposal “Interview coaching”."
    assert link == f"/contracts/proposals/{proposal_id}"
    [(subject, _)] = mailed(db, coach)
    assert subject == "Coachpact: “Interview coaching” was declined"
    assert told(db, student) == before


def test_a_proposal_made_outside_a_request_links_to_its_page(app, db, make_proposal, student):
    """The demo loader and scripts send proposals with no request: the link is still right."""
    proposal_id = make_proposal(student=student)
    [(_, link)] = told(db, student)
    assert link == f"/contracts/proposals/{proposal_id}"
    [(_, body)] = mailed(db, student)
    assert body.endswith(f"{app.config['APP_BASE_URL']}/contracts/proposals/{proposal_id}")


# --- payments ----------------------------------------------------------------------


@pytest.fixture
def pending_contract(db, make_proposal, coach, student):
    """A pending contract (its id), with two open Checkout attempts: cs_test_a and cs_test_b."""
    from contracts.services import accept_proposal
    from payments.models import Payment

    contract = accept_proposal(make_proposal(coach, student), db.session.merge(student))
    for session_id in ("cs_test_a", "cs_test_b"):
        db.session.add(Payment(contract_id=contract.id, checkout_session_id=session_id,
                               amount=contract.total_amount, currency=contract.currency))
    db.session.commit()
    return contract.id


def paid_event(db, contract_id: int, session_id: str) -> dict[str, Any]:
    """Stripe's checkout.session.completed for a paid attempt, as the sandbox sends it."""
    from contracts.models import Contract

    contract = db.session.get(Contract, contract_id)
    return {
        "id": f"evt_{session_id}", "object": "event", "type": "checkout.session.completed",
        "api_version": "2025-03-31.basil", "created": 1_790_000_000, "livemode": False,
        "data": {"object": {
            "id": session_id, "object": "checkout.session", "mode": "payment",
            "amount_total": contract.total_amount, "currency": contract.currency,
            "client_reference_id": str(contract.id),
            "metadata": {"contract_id": str(contract.id), "attempt": "1"},
            "payment_intent": f"pi_{session_id}", "payment_status": "paid",
            "status": "complete",
        }},
    }


def apply(client, db, event: dict[str, Any]) -> str | None:
    """Deliver `event` to the webhook and run its job as a consumer would; its outcome."""
    from payments.inbox.processing import process_event_job
    from payments.models import WebhookEvent

    answer = deliver(client, event)
    assert answer.status_code == 200
    db.session.expire_all()
    row = db.session.scalar(select(WebhookEvent).filter_by(stripe_event_id=event["id"]))
    process_event_job.call_local(row.id)
    db.session.expire_all()
    return db.session.get(WebhookEvent, row.id).outcome


def test_a_confirmed_payment_tells_the_student_and_the_coach_once(
    client, db, pending_contract, coach, student
):
    event = paid_event(db, pending_contract, "cs_test_a")
    coach_before, student_before = told(db, coach), told(db, student)
    coach_mails, student_mails = mailed(db, coach), mailed(db, student)

    assert apply(client, db, event) == "fulfilled"
    for _ in range(2):  # redelivered: the inbox knows it, and the job finds it processed
        assert apply(client, db, event) == "fulfilled"

    link = f"/contracts/{pending_contract}"
    assert told(db, student) == student_before + [(
        "Your payment of $200.00 for “Interview coaching” is confirmed. "
        "You can book your sessions with Maya Coach now.",
        link,
    )]
    assert told(db, coach) == coach_before + [(
        "Ana Student paid $200.00 for “Interview coaching”. You can schedule sessions now.",
        link,
    )]
    [(subject, _)] = mailed(db, student)[len(student_mails):]
    assert subject == "Coachpact: your payment for “Interview coaching” is confirmed"
    assert len(mailed(db, coach)) == len(coach_mails) + 1


def test_a_second_payment_refunded_tells_both_parties_once(
    client, db, pending_contract, coach, student
):
    from payments.models import Payment

    assert apply(client, db, paid_event(db, pending_contract, "cs_test_a")) == "fulfilled"
    coach_before, student_before = told(db, coach), told(db, student)
    mails_before = len(mailed(db, coach)) + len(mailed(db, student))

    second = paid_event(db, pending_contract, "cs_test_b")
    assert apply(client, db, second) == "duplicate"
    assert apply(client, db, second) == "duplicate"  # redelivered: nobody is told again

    notice = (
        "A second payment of $200.00 for “Interview coaching” arrived after the contract "
        "was already paid. It is being refunded in full; nothing else changes.",
        f"/contracts/{pending_contract}",
    )
    assert told(db, student) == student_before + [notice]
    assert told(db, coach) == coach_before + [notice]
    assert len(mailed(db, coach)) + len(mailed(db, student)) == mails_before + 2
    duplicate = db.session.scalar(select(Payment).filter_by(checkout_session_id="cs_test_b"))
    assert duplicate.void_reason.value == "duplicate"
