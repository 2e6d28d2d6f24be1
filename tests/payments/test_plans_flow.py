"""Payment plans end to end at the sandbox: a deposit through Checkout with the card saved,
instalments charged off-session by our own schedule, retries, past due, authentication."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from tests.payments.conftest import deliver, pay_deposit_by_card, payments, wait_until_state
from tests.support import at_once


@pytest.fixture(autouse=True)
def request_context(app):
    """Services link to pages in what they tell people, as they do inside a request."""
    with app.test_request_context():
        yield


@pytest.fixture
def plan_contract(make_plan_contract):
    """A pending $400.00 contract (4 × $100.00) offering a 25 % deposit and 3 instalments."""
    return make_plan_contract(10000)


@pytest.fixture
def at(clock, sandbox):
    """Move both clocks, ours and the sandbox's (Stripe's), to the same instant."""

    def move(when: datetime) -> None:
        clock.freeze(when)
        offset = int((when - datetime.now(UTC)).total_seconds())
        assert sandbox.tool("clock", offset_seconds=offset).status_code == 200

    return move


@pytest.fixture
def on_plan(db, sandbox, plan_contract, at):
    """The deposit paid by card through Checkout: the plan is running from 10 March."""
    at(datetime(2027, 3, 10, 12, 0, tzinfo=UTC))
    pay_deposit_by_card(db, sandbox, *plan_contract[:2])
    return plan_contract


def plan(db, contract_id):
    from payments.plans import plan_of

    db.session.expire_all()
    return plan_of(contract_id)


def contract(db, contract_id):
    from contracts.models import Contract

    db.session.expire_all()
    return db.session.get(Contract, contract_id)


def instalment(db, contract_id, number):
    return plan(db, contract_id).instalments[number]


def saved_card(sandbox, db, contract_id) -> str:
    import stripe

    from tests.payments.conftest import API_KEY

    client = stripe.StripeClient(API_KEY, base_addresses={"api": sandbox.url},
                                 max_network_retries=0)
    [card] = client.v1.customers.payment_methods.list(plan(db, contract_id).customer_id).data
    return card.id


def charge_at(at, db, contract_id, number, when: datetime) -> str:
    from payments import plans

    at(when)
    return plans.charge_instalment(instalment(db, contract_id, number).id)


def notices(db, user) -> list[str]:
    from notifications.models import Notification

    db.session.expire_all()
    return list(db.session.scalars(select(Notification.message).filter_by(user_id=user.id)
                                   .order_by(Notification.id)))


def test_the_deposit_starts_the_plan_and_unlocks_its_share_of_sessions(db, on_plan):
    contract_id = on_plan[0]
    running = plan(db, contract_id)
    assert [(i.number, i.due_on.isoformat(), i.amount, i.status.value)
            for i in running.instalments] == [
        (0, "2027-03-10", 10000, "paid"),
        (1, "2027-04-10", 10000, "scheduled"),
        (2, "2027-05-10", 10000, "scheduled"),
        (3, "2027-06-10", 10000, "scheduled"),
    ]
    paid = contract(db, contract_id)
    assert (paid.amount_paid, paid.plan_instalments, paid.sessions_unlocked) == (10000, 3, 1)


def test_instalments_are_charged_off_session_on_their_day_and_unlock_more(
    db, sandbox, on_plan, clock, at
):
    from payments import plans

    contract_id = on_plan[0]
    clock.freeze(datetime(2027, 4, 10, 8, 59, tzinfo=UTC))
    assert plans.due_instalment_ids() == []  # not before 09:00 UTC on its day
    assert charge_at(at, db, contract_id, 1, datetime(2027, 4, 10, 9, 0, tzinfo=UTC)) == (
        "instalment_paid")
    assert (contract(db, contract_id).amount_paid, contract(db, contract_id).sessions_unlocked) == (
        20000, 2)
    assert plan(db, contract_id).payment_method_id == saved_card(sandbox, db, contract_id)
    for number, day in ((2, datetime(2027, 5, 10, 9, tzinfo=UTC)),
                        (3, datetime(2027, 6, 10, 9, tzinfo=UTC))):
        assert charge_at(at, db, contract_id, number, day) == "instalment_paid"
    assert contract(db, contract_id).payment_status.value == "paid"
    assert plan(db, contract_id).status.value == "completed"
    # The charge's own events come back through the inbox and change nothing.
    wait_until_state(db, contract_id, ("active", "paid"))


def test_a_decline_is_retried_after_1_3_and_7_days_then_past_due_then_paid_again(
    db, sandbox, on_plan, clock, at, make_user
):
    from payments import plans

    contract_id, student, coach = on_plan
    admin = make_user("admin", name="Ada Admin")
    card = saved_card(sandbox, db, contract_id)
    assert sandbox.tool(f"payment_methods/{card}/next", outcome="decline").status_code == 200
    due = datetime(2027, 4, 10, 9, 0, tzinfo=UTC)
    outcomes, retries = [], []
    for days in (0, 1, 3, 7):
        outcomes.append(charge_at(at, db, contract_id, 1, due + timedelta(days=days)))
        retries.append(instalment(db, contract_id, 1).next_attempt_at)
    assert outcomes == ["retry_scheduled", "retry_scheduled", "retry_scheduled", "past_due"]
    assert retries[:3] == [due + timedelta(days=1), due + timedelta(days=3),
                           due + timedelta(days=7)]
    assert instalment(db, contract_id, 1).status.value == "failed"
    assert contract(db, contract_id).status.value == "past_due"
    assert any("overdue" in m for m in notices(db, coach))
    assert any("past due" in m for m in notices(db, admin))
    # Nothing more is tried on its own; the student pays it by hand and all is well again.
    assert plans.due_instalment_ids() == []
    sandbox.tool(f"payment_methods/{card}/next", outcome="succeed")
    from payments import checkout

    url = checkout.start_instalment_checkout(contract_id, instalment(db, contract_id, 1).id,
                                             db.session.merge(student))
    db.session.commit()
    session_id = url.rstrip("/").rsplit("/", 1)[-1]
    assert sandbox.pay(session_id).status_code == 200
    checkout.confirm_return(contract_id, db.session.merge(student), session_id)
    db.session.commit()
    assert instalment(db, contract_id, 1).status.value == "paid"
    assert contract(db, contract_id).status.value == "active"
    assert contract(db, contract_id).amount_paid == 20000


def test_a_bank_asking_for_authentication_mails_a_link_that_pays_it(
    db, sandbox, on_plan, clock, at
):
    from payments import checkout, plans

    contract_id, student, _ = on_plan
    card = saved_card(sandbox, db, contract_id)
    sandbox.tool(f"payment_methods/{card}/next", outcome="authentication_required")
    due = datetime(2027, 4, 10, 9, 0, tzinfo=UTC)
    assert charge_at(at, db, contract_id, 1, due) == "authentication_required"
    waiting = instalment(db, contract_id, 1)
    assert (waiting.status.value, waiting.needs_authentication) == ("scheduled", True)
    link = f"/contracts/{contract_id}/instalments/{waiting.id}/pay"
    assert any("confirm" in m for m in notices(db, student))
    from notifications.models import Notification

    assert db.session.scalar(select(Notification.link).filter_by(user_id=student.id)
                             .order_by(Notification.id.desc())) == link
    # No retry charges the card while the student is asked.
    at(due + timedelta(days=8))
    assert plans.due_instalment_ids() == []
    url = checkout.start_instalment_checkout(contract_id, waiting.id, db.session.merge(student))
    db.session.commit()
    session_id = url.rstrip("/").rsplit("/", 1)[-1]
    sandbox.pay(session_id)
    checkout.confirm_return(contract_id, db.session.merge(student), session_id)
    db.session.commit()
    assert instalment(db, contract_id, 1).status.value == "paid"
    assert contract(db, contract_id).amount_paid == 20000


def test_redelivered_events_settle_an_instalment_once(db, client, sandbox, on_plan, clock, at):
    contract_id = on_plan[0]
    charge_at(at, db, contract_id, 1, datetime(2027, 4, 10, 9, 0, tzinfo=UTC))
    [succeeded] = [e for e in sandbox.events("payment_intent.succeeded")
                   if e["data"]["object"]["metadata"].get("instalment_id")]
    for n in range(3):
        again = dict(succeeded, id=f"{succeeded['id']}_{n}")  # as if Stripe sent it anew
        assert deliver(client, again).status_code == 200
    assert contract(db, contract_id).amount_paid == 20000
    from payments.models import Payment

    assert db.session.scalar(select(func.count()).select_from(Payment).where(
        Payment.instalment_id == instalment(db, contract_id, 1).id,
        Payment.status == Payment.status.type.enum_class("succeeded"))) == 1


@pytest.mark.postgres
def test_two_sweeps_at_once_charge_a_due_instalment_once(app, db, sandbox, on_plan, clock, at):
    from payments import plans

    contract_id = on_plan[0]
    target = instalment(db, contract_id, 1).id
    clock.freeze(datetime(2027, 4, 10, 9, 30, tzinfo=UTC))
    outcomes = at_once(app, plans.charge_instalment, [target, target])
    assert sorted(outcomes) == ["instalment_paid", "not_due"]
    charges = [e for e in sandbox.events("payment_intent.succeeded")
               if e["data"]["object"]["metadata"].get("instalment_id") == str(target)]
    assert len(charges) == 1
    assert contract(db, contract_id).amount_paid == 20000


def test_the_scheduling_gate_refuses_the_next_session_until_the_next_instalment(
    db, on_plan, at
):
    from scheduling.sessions import SchedulingError, book_session

    contract_id, student, _ = on_plan
    first = datetime(2027, 3, 15, 10, 0, tzinfo=UTC)
    book_session(contract_id, db.session.merge(student), starts_at=first)
    db.session.commit()
    with pytest.raises(SchedulingError, match="next one opens when the next instalment is paid"):
        book_session(contract_id, db.session.merge(student), starts_at=first + timedelta(days=1))
    db.session.rollback()
    charge_at(at, db, contract_id, 1, datetime(2027, 4, 10, 9, 0, tzinfo=UTC))
    booked = book_session(contract_id, db.session.merge(student),
                          starts_at=datetime(2027, 4, 12, 10, 0, tzinfo=UTC))
    db.session.commit()
    assert booked.id and contract(db, contract_id).sessions_unlocked == 2


def test_the_command_charges_what_falls_due_ahead_of_the_clock(db, runner, on_plan):
    contract_id = on_plan[0]
    assert runner.invoke(args=["payments", "charge-due"]).output.strip() == (
        "0 instalment(s) due: none charged")
    result = runner.invoke(args=["payments", "charge-due", "--ahead", "31d"])
    assert result.exit_code == 0, result.output
    assert "1 instalment(s) due: instalment_paid" in result.output
    assert contract(db, contract_id).amount_paid == 20000


# Columns that say when something happened (or, for a mail, when it is next sent): after
# charging ahead of the clock none of them may lie in the future.
HAPPENED = {"created_at", "updated_at", "paid_at", "issued_at", "settled_at", "received_at",
            "processed_at", "sent_at", "decided_at", "reviewed_at", "marked_at"}


def future_timestamps(db, now: datetime) -> list[str]:
    from database.types import UTCDateTime
    from notifications.models import MailStatus, OutboxMail

    db.session.expire_all()
    found = []
    for table in db.metadata.sorted_tables:
        for column in table.columns:
            if column.name in HAPPENED and isinstance(column.type, UTCDateTime):
                latest = db.session.scalar(select(func.max(column)))
                if latest is not None and latest > now:
                    found.append(f"{table.name}.{column.name} = {latest:%d %b %Y %H:%M}")
    pending = db.session.scalar(select(func.max(OutboxMail.next_attempt_at))
                                .where(OutboxMail.status == MailStatus.PENDING))
    if pending is not None and pending > now:
        found.append(f"a mail pending until {pending:%d %b %Y %H:%M}")
    return found


def test_charging_ahead_leaves_every_timestamp_true(db, runner, on_plan, clock):
    from payments.models import Invoice, Payment

    contract_id = on_plan[0]
    now = clock.now()
    result = runner.invoke(args=["payments", "charge-due", "--ahead", "32d"])
    assert result.exit_code == 0, result.output
    assert "1 instalment(s) due: instalment_paid" in result.output
    assert contract(db, contract_id).amount_paid == 20000
    # The instalment of 10 April was charged on 10 March, and everything says so.
    paid = instalment(db, contract_id, 1)
    assert paid.status.value == "paid" and paid.paid_at == now
    assert paid.due_on.isoformat() == "2027-04-10"
    [charge] = [p for p in payments(db, contract_id) if p.instalment_id == paid.id]
    assert charge.created_at == charge.paid_at == now
    assert db.session.scalar(select(Invoice.issued_at).where(Invoice.payment_id == charge.id)
                             ) == now
    assert future_timestamps(db, now) == []
    assert clock.now() == now
    assert db.session.scalar(select(func.count()).select_from(Payment)) >= 2


def test_charging_ahead_is_refused_against_stripe_itself(app, db, runner, on_plan, clock):
    from payments.models import Payment

    before = db.session.scalar(select(func.count()).select_from(Payment))
    app.config.update(STRIPE_USES_SANDBOX=False)
    try:
        result = runner.invoke(args=["payments", "charge-due", "--ahead", "32d"])
        assert result.exit_code == 2
        assert "--ahead charges instalments before their date, so it runs only against the " \
               "Stripe sandbox" in " ".join(result.output.split())
        # Without --ahead it charges what is due now, as the periodic job does.
        plain = runner.invoke(args=["payments", "charge-due"])
        assert plain.output.strip() == "0 instalment(s) due: none charged"
    finally:
        app.config.update(STRIPE_USES_SANDBOX=True)
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Payment)) == before
    assert instalment(db, on_plan[0], 1).status.value == "scheduled"
