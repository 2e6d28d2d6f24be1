"""Proposals nobody answers expire: refused after their time, marked by a job, shown dated."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from markupsafe import escape
from sqlalchemy import func, select

from audit.models import AuditEntry
from contracts.models import Contract, Proposal, ProposalStatus
from notifications.models import Notification, OutboxMail
from tests.conftest import login

SENT_AT = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
EXPIRES_AT = SENT_AT + timedelta(days=14)  # PROPOSAL_EXPIRY_DAYS' default


@pytest.fixture
def coach(make_user):
    return make_user("coach", email="coach@example.com", name="Maya Coach",
                     timezone="Europe/London")


@pytest.fixture
def student(make_user):
    return make_user("student", email="student@example.com", name="Ana Student",
                     timezone="America/New_York")


@pytest.fixture
def sent(clock, make_proposal, coach, student) -> int:
    """A proposal sent at SENT_AT; the clock stays frozen there until a test moves it."""
    clock.freeze(SENT_AT)
    return make_proposal(coach, student, title="Interview coaching")


def rows(db) -> dict[str, int]:
    """How many rows an answer could write, to show that a refusal writes none."""
    return {
        model.__name__: db.session.scalar(select(func.count()).select_from(model))
        for model in (Contract, Notification, OutboxMail, AuditEntry)
    }


def status_of(db, proposal_id: int) -> ProposalStatus:
    db.session.expire_all()
    return db.session.get(Proposal, proposal_id).status


# --- the expiry date ------------------------------------------------------------------


def test_sending_sets_the_expiry_from_the_setting(app, db, sent, make_proposal, coach, student):
    assert db.session.get(Proposal, sent).expires_at == EXPIRES_AT
    app.config["PROPOSAL_EXPIRY_DAYS"] = 3
    three_days = make_proposal(coach, student)
    assert db.session.get(Proposal, three_days).expires_at == SENT_AT + timedelta(days=3)


def test_zero_days_means_never(app, client, db, clock, make_proposal, coach, student):
    app.config["PROPOSAL_EXPIRY_DAYS"] = 0
    never = make_proposal(coach, student)
    assert db.session.get(Proposal, never).expires_at is None
    clock.advance(timedelta(days=3650))
    login(client, student)
    assert client.submit(f"/contracts/proposals/{never}/accept").status_code == 302
    assert status_of(db, never) is ProposalStatus.ACCEPTED


# --- answers after the expiry ---------------------------------------------------------


@pytest.mark.parametrize("action", ["accept", "decline"])
def test_an_answer_after_the_expiry_is_refused_and_writes_nothing(
    client, db, clock, sent, student, action
):
    login(client, student)
    clock.freeze(EXPIRES_AT)  # the very instant: expired (the job has not run)
    before = rows(db)
    response = client.submit(f"/contracts/proposals/{sent}/{action}", follow_redirects=True)
    # Dated on the student's own clock: 15 Dec, 14:00 UTC is 09:00 in New York.
    message = "This proposal expired on 15 Dec 2026, 09:00 EST; ask the coach for a new one."
    assert str(escape(message)) in response.get_data(as_text=True)
    assert rows(db) == before
    assert status_of(db, sent) is ProposalStatus.SENT
    assert db.session.get(Proposal, sent).responded_at is None


def test_accepting_just_before_the_expiry_works(client, db, clock, sent, student):
    login(client, student)
    clock.freeze(EXPIRES_AT - timedelta(seconds=1))
    assert client.submit(f"/contracts/proposals/{sent}/accept").status_code == 302
    assert status_of(db, sent) is ProposalStatus.ACCEPTED


def test_the_coach_withdraws_before_the_expiry_but_not_after(
    client, db, clock, make_proposal, sent, coach, student
):
    later = make_proposal(coach, student)
    login(client, coach)
    clock.freeze(EXPIRES_AT - timedelta(minutes=1))
    assert client.submit(f"/contracts/proposals/{sent}/withdraw").status_code == 302
    assert status_of(db, sent) is ProposalStatus.WITHDRAWN
    clock.freeze(EXPIRES_AT)
    response = client.submit(f"/contracts/proposals/{later}/withdraw", follow_redirects=True)
    assert "This proposal expired on 15 Dec 2026, 14:00 GMT" in response.get_data(as_text=True)
    assert status_of(db, later) is ProposalStatus.SENT


# --- the job ----------------------------------------------------------------------------


def expiry_notes(db, user_id: int) -> list[str]:
    return list(
        db.session.scalars(
            select(Notification.message).where(
                Notification.user_id == user_id, Notification.message.contains("expired")
            )
        )
    )


def test_the_job_marks_expired_proposals_and_tells_both_parties_once(
    app, db, clock, sent, make_proposal, coach, student
):
    from contracts.expiry import expire_proposals

    clock.advance(timedelta(days=1))
    still_open = make_proposal(coach, student, title="Sent a day later")
    clock.freeze(EXPIRES_AT)
    with app.app_context():
        expire_proposals()  # the periodic job, through its task path
        expire_proposals()  # a second run finds nothing more to do
    assert status_of(db, sent) is ProposalStatus.EXPIRED
    assert status_of(db, still_open) is ProposalStatus.SENT
    assert expiry_notes(db, student.id) == [
        "The proposal “Interview coaching” from Maya Coach expired before you answered it. "
        "Ask Maya Coach for a new one if you still want it."
    ]
    assert expiry_notes(db, coach.id) == [
        "Your proposal “Interview coaching” to Ana Student expired without an answer. "
        "You can send a new one."
    ]
    mails = db.session.scalars(
        select(OutboxMail.recipient).where(OutboxMail.subject.contains("expired"))
    ).all()
    assert sorted(mails) == ["coach@example.com", "student@example.com"]
    [entry] = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "proposal.expired")
    ).all()
    assert (entry.object_id, entry.actor_label) == (sent, "system")
    assert (entry.before, entry.after) == ({"status": "sent"}, {"status": "expired"})


def test_the_job_leaves_answered_and_never_expiring_proposals(
    app, db, clock, sent, make_proposal, coach, student
):
    from contracts.expiry import expire_due_proposals
    from contracts.services import accept_proposal

    app.config["PROPOSAL_EXPIRY_DAYS"] = 0
    never = make_proposal(coach, student)
    with app.test_request_context():
        accept_proposal(sent, db.session.merge(student))
        db.session.commit()
    clock.advance(timedelta(days=400))
    with app.test_request_context():
        assert expire_due_proposals() == 0
        db.session.commit()
    assert status_of(db, sent) is ProposalStatus.ACCEPTED
    assert status_of(db, never) is ProposalStatus.SENT


def test_the_job_is_scheduled_every_minute():
    import jobs
    from contracts.expiry import expire_proposals

    moment = datetime(2026, 12, 15, 14, 7)  # the queue's clock is naive UTC
    assert expire_proposals.name in {task.name for task in jobs.huey.read_periodic(moment)}


def test_an_answer_after_the_job_gives_the_expiry_message(client, db, clock, app, sent, student):
    from contracts.expiry import expire_proposals

    clock.freeze(EXPIRES_AT + timedelta(hours=1))
    with app.app_context():
        expire_proposals()
    login(client, student)
    response = client.submit(f"/contracts/proposals/{sent}/accept", follow_redirects=True)
    assert "ask the coach for a new one" in response.get_data(as_text=True)
    assert status_of(db, sent) is ProposalStatus.EXPIRED


# --- the pages --------------------------------------------------------------------------


def test_the_proposal_page_shows_the_expiry_in_the_viewers_zone(
    client, clock, sent, coach, student
):
    login(client, student)
    page = client.get(f"/contracts/proposals/{sent}").get_data(as_text=True)
    assert "Expires on 15 Dec 2026, 09:00 EST" in page
    assert "Accept and continue to payment" in page
    client.submit("/auth/logout")
    login(client, coach)
    page = client.get(f"/contracts/proposals/{sent}").get_data(as_text=True)
    assert "Expires on 15 Dec 2026, 14:00 GMT" in page


def test_an_expired_proposal_shows_expired_and_no_answers(client, clock, sent, student):
    login(client, student)
    clock.freeze(EXPIRES_AT)  # before the job: the page already knows
    page = client.get(f"/contracts/proposals/{sent}").get_data(as_text=True)
    assert 'data-status="expired">Expired</span>' in page
    assert "Expired on 15 Dec 2026, 09:00 EST." in page
    assert "Accept and continue to payment" not in page and "/decline" not in page
    listing = client.get("/contracts/").get_data(as_text=True)
    assert 'id="closed-proposals"' in listing and 'id="proposals"' not in listing
    assert 'data-status="expired"' in listing


@pytest.mark.postgres
def test_an_accept_racing_the_job_has_one_outcome(app, db, clock, sent, student):
    """Whichever takes the row lock first wins; the other sees its outcome."""
    from contracts.expiry import expire_due_proposals
    from contracts.services import TransitionError, accept_proposal
    from tests.support import at_once

    clock.freeze(EXPIRES_AT)

    def run(which: str):
        from extensions import db as session_db

        try:
            if which == "job":
                result = expire_due_proposals()
            else:
                result = accept_proposal(sent, session_db.session.merge(student))
            session_db.session.commit()
            return result
        except TransitionError as exc:
            session_db.session.rollback()
            return str(exc)

    job, accept = at_once(app, run, ["job", "accept"])
    assert "expired" in accept
    # The job skips a row an answer holds locked; its next run marks it.
    assert job + run("job") == 1
    assert status_of(db, sent) is ProposalStatus.EXPIRED
    assert db.session.scalar(select(func.count()).select_from(Contract)) == 0
