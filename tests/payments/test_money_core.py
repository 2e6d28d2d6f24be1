"""The money core: one settle for every payment, one standing for every figure.

Each test here is a bug that once cost money: held payments counted at the
contract's total, plans that refunds never locked, instalments counted twice or
not at all, disputes that closed more than they took. Synthetic Stripe objects
go through the same functions the event pipeline calls (`fulfil_checkout`,
`mirror_dispute`); refunds of card payments are asked of the sandbox.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from tests.payments.conftest import pay_deposit_by_card, start_checkout, wait_until_state


@pytest.fixture(autouse=True)
def request_context(app):
    """Services link to pages in what they tell people, as they do inside a request."""
    with app.test_request_context():
        yield


def fresh(db, model, row_id):
    db.session.expire_all()
    return db.session.get(model, row_id)


def contract(db, contract_id):
    from contracts.models import Contract

    return fresh(db, Contract, contract_id)


def money(db, contract_id):
    from payments.standing import standing_of

    return standing_of(contract(db, contract_id))


def session_paid(contract_id: int, amount: int, currency: str = "usd", **metadata) -> dict:
    """A paid Checkout session as Stripe reports it in `checkout.session.completed`."""
    n = session_paid.count = getattr(session_paid, "count", 0) + 1
    return {
        "id": f"cs_test_core_{contract_id}_{n}",
        "object": "checkout.session",
        "amount_total": amount,
        "currency": currency,
        "status": "complete",
        "payment_status": "paid",
        "payment_intent": f"pi_core_{contract_id}_{n}",
        "metadata": {"contract_id": str(contract_id), **metadata},
    }


def fulfil(db, session: dict) -> str:
    from payments.checkout.fulfil import fulfil_checkout

    outcome = fulfil_checkout(session, source="event")
    db.session.commit()
    return outcome


def held_payment(db, contract_id: int, amount: int, **metadata):
    from payments.records import payment_by

    session = session_paid(contract_id, amount, **metadata)
    assert fulfil(db, session) == "flagged"
    payment = payment_by(checkout_session_id=session["id"])
    assert payment.held_for_review
    return payment


def ledger_problems(db, contract_id):
    from payouts.ledger import contract_money

    return contract_money(contract(db, contract_id)).problems


@pytest.fixture
def plan_contract(make_plan_contract):
    """A pending $400.00 contract (4 × $100.00) offering a 25 % deposit and 3 instalments."""
    return make_plan_contract(10000)


@pytest.fixture
def offline_plan(plan_contract, admin, record_plan_deposit):
    """The plan's $100.00 deposit paid offline: the plan runs, 1 session of 4 unlocked."""
    record_plan_deposit(plan_contract[0], admin, reference="CASH-1")
    return plan_contract


def instalment_ids(db, contract_id) -> list[int]:
    from payments.plans import plan_of

    db.session.expire_all()
    return [i.id for i in plan_of(contract_id).instalments]


# --- the review queue --------------------------------------------------------------


def test_an_accepted_held_plan_deposit_starts_the_plan_and_counts_only_the_deposit(
    db, plan_contract, admin
):
    from payments.checkout.review import accept_held_payment
    from payments.plans import plan_of

    contract_id = plan_contract[0]
    # A deposit one cent short of $100.00 is held; the admin accepts it as it is.
    held = held_payment(db, contract_id, 9999, plan_instalments="3")
    accept_held_payment(held.id, db.session.merge(admin), "Checked with the bank")
    db.session.commit()
    paid = contract(db, contract_id)
    assert (paid.status.value, paid.payment_status.value) == ("active", "partially_paid")
    assert (paid.amount_paid, paid.plan_instalments, paid.sessions_unlocked) == (9999, 3, 0)
    assert [i.status.value for i in plan_of(contract_id).instalments] == [
        "paid", "scheduled", "scheduled", "scheduled"]
    assert ledger_problems(db, contract_id) == []


def test_accepting_a_short_payment_counts_what_arrived_unless_the_shortfall_is_waived(
    db, pending_contract, admin
):
    from payments.checkout.review import accept_held_payment

    contract_id = pending_contract[0]  # 4 × $50.00
    held = held_payment(db, contract_id, 19999)
    accept_held_payment(held.id, db.session.merge(admin), "short by a cent")
    db.session.commit()
    short = contract(db, contract_id)
    assert (short.status.value, short.payment_status.value) == ("active", "partially_paid")
    assert (short.amount_paid, short.amount_waived, short.sessions_unlocked) == (19999, 0, 3)
    assert money(db, contract_id).still_to_pay == 1
    assert ledger_problems(db, contract_id) == []


def test_a_waived_shortfall_is_recorded_audited_and_unlocks_every_session(
    db, pending_contract, admin
):
    from audit.models import AuditEntry
    from payments.checkout.review import accept_held_payment

    contract_id = pending_contract[0]
    held = held_payment(db, contract_id, 19999)
    accept_held_payment(held.id, db.session.merge(admin), "bank fee", waive_shortfall=True)
    db.session.commit()
    paid = contract(db, contract_id)
    assert (paid.status.value, paid.payment_status.value) == ("active", "paid")
    assert (paid.amount_paid, paid.amount_waived, paid.sessions_unlocked) == (19999, 1, 4)
    assert db.session.scalar(select(AuditEntry.after).where(
        AuditEntry.action == "payment.shortfall_waived")) == {"waived": 1, "amount": 19999}
    standing = money(db, contract_id)
    assert (standing.waived, standing.still_to_pay, standing.fee) == (1, 0, 1000 - 1)
    assert ledger_problems(db, contract_id) == []


def test_an_accepted_overpayment_is_excess_the_ledger_accounts_for(db, pending_contract, admin):
    from payments.checkout.review import accept_held_payment

    contract_id = pending_contract[0]
    held = held_payment(db, contract_id, 20001)
    accept_held_payment(held.id, db.session.merge(admin), "a cent too much")
    db.session.commit()
    standing = money(db, contract_id)
    assert (standing.arrived, standing.excess, standing.refundable) == (20001, 1, 20001)
    assert contract(db, contract_id).payment_status.value == "paid"
    assert ledger_problems(db, contract_id) == []


# --- failures belong to failed attempts -----------------------------------------------


def test_a_succeeded_payment_keeps_no_earlier_attempts_failure(db, student_client, sandbox,
                                                               pending_contract):
    from payments.models import Payment

    contract_id = pending_contract[0]
    session_id = start_checkout(student_client, contract_id)
    assert sandbox.pay(session_id, card_number="4000000000000002").status_code == 402
    assert sandbox.pay(session_id, card_number="4000000000009995").status_code == 402
    assert sandbox.pay(session_id).status_code == 200
    student_client.get(f"/contracts/{contract_id}/payment-success?session_id={session_id}")
    wait_until_state(db, contract_id, ("active", "paid"))
    db.session.expire_all()
    [payment] = db.session.scalars(select(Payment).filter_by(contract_id=contract_id)).all()
    assert (payment.status.value, payment.failure_reason) == ("succeeded", None)
    page = student_client.get("/payments/").get_data(as_text=True)
    assert "insufficient funds" not in page and "declined" not in page.lower()


# --- refunds lock what they give back -----------------------------------------------------


def test_a_plan_deposit_refunded_in_full_closes_the_contract_and_its_plan(
    db, offline_plan, admin
):
    from payments.plans import plan_of
    from payments.refunds import refund_contract

    contract_id = offline_plan[0]
    assert contract(db, contract_id).sessions_unlocked == 1
    refund = refund_contract(contract_id, db.session.merge(admin), amount=10000,
                             note="Given back in cash")
    db.session.commit()
    assert (fresh(db, type(refund), refund.id).status.value, refund.stripe_refund_id) == (
        "succeeded", None)
    closed = contract(db, contract_id)
    assert (closed.status.value, closed.payment_status.value) == ("refunded", "refunded")
    assert closed.sessions_unlocked == 0
    plan = plan_of(contract_id)
    assert plan.status.value == "cancelled"
    assert [i.status.value for i in plan.instalments] == [
        "paid", "cancelled", "cancelled", "cancelled"]
    assert ledger_problems(db, contract_id) == []


def test_a_partial_refund_of_a_plan_deposit_locks_the_sessions_it_paid_for(
    db, offline_plan, admin
):
    from payments.refunds import refund_contract

    contract_id = offline_plan[0]
    refund_contract(contract_id, db.session.merge(admin), amount=5000, note="Half back")
    db.session.commit()
    partly = contract(db, contract_id)
    assert (partly.status.value, partly.payment_status.value) == ("active", "partially_refunded")
    assert (partly.amount_paid, partly.amount_returned, partly.sessions_unlocked) == (
        10000, 5000, 0)
    assert ledger_problems(db, contract_id) == []


def test_a_contract_paid_offline_is_cancelled_with_its_refund_given_back_offline(
    db, pending_contract, admin
):
    from payments.manual import record_manual_payment
    from payments.models import ManualMethod, Payment
    from payments.refunds import cancel_active_contract

    contract_id = pending_contract[0]
    record_manual_payment(contract_id, db.session.merge(admin), method=ManualMethod.CHEQUE,
                          reference="CHQ-9", received_on=date.today(), note="")
    db.session.commit()
    refund = cancel_active_contract(contract_id, db.session.merge(admin), reason="Moved away")
    db.session.commit()
    assert refund is not None and fresh(db, type(refund), refund.id).status.value == "succeeded"
    closed = contract(db, contract_id)
    assert (closed.status.value, closed.payment_status.value) == ("cancelled", "refunded")
    [payment] = db.session.scalars(select(Payment).filter_by(contract_id=contract_id)).all()
    assert (payment.status.value, payment.amount_refunded) == ("refunded", 20000)


# --- instalments are counted once, whenever they come ------------------------------------


def test_an_instalment_paid_offline_and_then_by_card_counts_once_and_the_card_goes_back(
    db, sandbox, offline_plan, admin
):
    from payments.models import Refund
    from payments.plans import record_manual_instalment

    contract_id = offline_plan[0]
    first = instalment_ids(db, contract_id)[1]
    record_manual_instalment(first, db.session.merge(admin), reference="BANK-1")
    db.session.commit()
    # The student paid the same instalment through Checkout meanwhile.
    outcome = fulfil(db, session_paid(contract_id, 10000, instalment_id=str(first)))
    assert outcome == "duplicate"
    paid = contract(db, contract_id)
    assert (paid.amount_paid, paid.sessions_unlocked) == (20000, 2)
    [refund] = db.session.scalars(select(Refund).filter_by(contract_id=contract_id)).all()
    assert (refund.amount, refund.source.value, refund.payment.void_reason.value) == (
        10000, "duplicate", "duplicate")
    assert ledger_problems(db, contract_id) == []


def test_the_last_instalments_can_be_recorded_offline_while_the_plan_is_paused(
    db, offline_plan, admin
):
    from payments.plans import pause, plan_of, record_manual_instalment

    contract_id = offline_plan[0]
    pause(plan_of(contract_id).id, db.session.merge(admin))
    db.session.commit()
    for instalment_id in instalment_ids(db, contract_id)[1:]:
        record_manual_instalment(instalment_id, db.session.merge(admin), reference="BANK")
        db.session.commit()
    assert plan_of(contract_id).status.value == "completed"
    paid = contract(db, contract_id)
    assert (paid.payment_status.value, paid.amount_paid, paid.sessions_unlocked) == (
        "paid", 40000, 4)


# --- disputes take what they take ------------------------------------------------------------


@pytest.fixture
def card_plan(db, sandbox, plan_contract):
    """The plan's deposit paid by card through Checkout at the sandbox."""
    pay_deposit_by_card(db, sandbox, *plan_contract[:2])
    return plan_contract


def deposit_dispute(db, sandbox, contract_id, **amount) -> str:
    """Open a chargeback on the first payment's charge; the dispute's id at Stripe."""
    from payments.models import Payment

    db.session.expire_all()
    deposit = db.session.scalars(select(Payment).filter_by(contract_id=contract_id)).first()
    response = sandbox.tool(f"charges/{deposit.charge_id}/dispute", **amount)
    assert response.status_code == 200, response.text
    wait_until_state(db, contract_id, ("disputed", "disputed"))
    return response.json()["id"]


def test_an_instalment_paid_during_a_dispute_counts_and_a_lost_deposit_keeps_the_rest(
    db, sandbox, card_plan, admin
):
    from payments.plans import record_manual_instalment
    from payments.refunds import refusal

    contract_id = card_plan[0]
    dispute_id = deposit_dispute(db, sandbox, contract_id)
    first = instalment_ids(db, contract_id)[1]
    record_manual_instalment(first, db.session.merge(admin), reference="BANK-2")
    db.session.commit()
    assert contract(db, contract_id).amount_paid == 20000  # counted while disputed

    assert sandbox.tool(f"disputes/{dispute_id}/close", outcome="lost").status_code == 200
    wait_until_state(db, contract_id, ("active", "partially_refunded"))
    after = contract(db, contract_id)
    assert (after.amount_paid, after.amount_returned, after.sessions_unlocked) == (
        20000, 10000, 1)
    standing = money(db, contract_id)
    assert (standing.lost, standing.kept) == (10000, 10000)
    # The disputed charge cannot be refunded at Stripe; the offline instalment can.
    assert refusal(after, standing) is None
    assert standing.refund_target(through_stripe=True) is None
    assert ledger_problems(db, contract_id) == []


def test_a_partial_refund_then_a_lost_dispute_on_part_keeps_the_rest(
    db, sandbox, paid, admin
):
    from payments.refunds import refund_contract, send_now

    contract_id = paid[0]  # 4 × $50.00
    refund = refund_contract(contract_id, db.session.merge(admin), amount=5000, note="One back")
    db.session.commit()
    send_now(refund.id)
    wait_until_state(db, contract_id, ("active", "partially_refunded"))
    dispute_id = deposit_dispute(db, sandbox, contract_id, amount=5000)
    assert sandbox.tool(f"disputes/{dispute_id}/close", outcome="lost").status_code == 200
    wait_until_state(db, contract_id, ("active", "partially_refunded"))
    kept = contract(db, contract_id)
    assert (kept.amount_returned, kept.session_allowance, kept.sessions_unlocked) == (
        10000, 2, 2)
    assert money(db, contract_id).kept == 10000
    assert ledger_problems(db, contract_id) == []


def test_after_a_lost_dispute_on_everything_no_refund_is_offered(db, sandbox, paid):
    from payments.refunds import refusal

    contract_id = paid[0]
    dispute_id = deposit_dispute(db, sandbox, contract_id)
    assert sandbox.tool(f"disputes/{dispute_id}/close", outcome="lost").status_code == 200
    wait_until_state(db, contract_id, ("refunded", "refunded"))
    assert "bank took the disputed payment back" in refusal(contract(db, contract_id))
    assert ledger_problems(db, contract_id) == []


# --- Stripe's refusals are failures, not silence -------------------------------------------


def test_a_plan_whose_deposit_was_a_bank_debit_fails_its_charge_instead_of_waiting_forever(
    db, sandbox, plan_contract, clock
):
    from notifications.models import Notification
    from payments import checkout, plans

    contract_id, student, _ = plan_contract
    url = checkout.start_checkout(contract_id, db.session.merge(student), instalments=3)
    db.session.commit()
    session_id = url.rstrip("/").rsplit("/", 1)[-1]
    assert sandbox.pay(session_id, bank_account="000123456789").status_code == 200
    assert sandbox.tool(f"checkout/sessions/{session_id}/settle").status_code == 200
    wait_until_state(db, contract_id, ("active", "partially_paid"))
    first = plans.plan_of(contract_id).instalments[1]
    clock.freeze(datetime.combine(first.due_on, datetime.min.time(), tzinfo=UTC).replace(hour=9))
    assert plans.charge_instalment(first.id) == "retry_scheduled"
    db.session.expire_all()
    first = plans.plan_of(contract_id).instalments[1]
    assert (first.status.value, first.attempts) == ("scheduled", 1)
    assert first.last_error and first.next_attempt_at.date() > first.due_on
    told = db.session.scalars(select(Notification.message).filter_by(user_id=student.id)).all()
    assert any("did not go through" in message for message in told)


def test_the_review_queue_offers_to_write_off_a_shortfall_and_does_it_when_ticked(
    db, client, pending_contract, admin
):
    from tests.conftest import login

    contract_id = pending_contract[0]
    held = held_payment(db, contract_id, 19950)
    login(client, admin)
    page = " ".join(client.get("/admin/reviews").get_data(as_text=True).split())
    assert f'id="waive-{held.id}"' in page
    assert "write off the missing $0.50" in page
    response = client.submit(f"/admin/reviews/{held.id}/accept",
                             {"note": "Bank fee", "waive_shortfall": "y"})
    assert response.status_code == 302
    paid = contract(db, contract_id)
    assert (paid.payment_status.value, paid.amount_paid, paid.amount_waived) == (
        "paid", 19950, 50)


def test_a_refund_larger_than_one_payment_is_taken_from_several(db, offline_plan, admin):
    from payments.models import Refund
    from payments.plans import record_manual_instalment
    from payments.refunds import refund_contract

    contract_id = offline_plan[0]
    first = instalment_ids(db, contract_id)[1]
    record_manual_instalment(first, db.session.merge(admin), reference="BANK-3")
    db.session.commit()
    refund_contract(contract_id, db.session.merge(admin), amount=15000, note="Most of it back")
    db.session.commit()
    db.session.expire_all()
    parts = db.session.scalars(select(Refund).filter_by(contract_id=contract_id)
                               .order_by(Refund.id)).all()
    assert [(r.amount, r.status.value) for r in parts] == [(10000, "succeeded"),
                                                           (5000, "succeeded")]
    assert len({r.payment_id for r in parts}) == 2
    assert contract(db, contract_id).amount_returned == 15000
    assert ledger_problems(db, contract_id) == []


def test_a_dispute_on_a_payment_that_does_not_count_leaves_the_contract_alone(
    db, pending_contract, admin
):
    from payments.manual import record_manual_payment
    from payments.models import Dispute, ManualMethod
    from payments.refunds.disputes import mirror_dispute

    contract_id = pending_contract[0]
    held = held_payment(db, contract_id, 19999)
    record_manual_payment(contract_id, db.session.merge(admin), method=ManualMethod.CASH,
                          reference="CASH-2", received_on=date.today(), note="")
    db.session.commit()
    outcome = mirror_dispute({
        "id": "dp_core_held", "object": "dispute", "payment_intent": held.payment_intent_id,
        "amount": 19999, "currency": "usd", "reason": "fraudulent",
        "status": "needs_response", "is_charge_refundable": False,
    })
    db.session.commit()
    assert outcome == "disputed"
    assert (contract(db, contract_id).status.value,
            contract(db, contract_id).payment_status.value) == ("active", "paid")
    assert db.session.scalar(select(Dispute.payment_id)) == held.id  # listed for the admin
    # The contract's own money is not under dispute: it can still be refunded.
    from payments.refunds import refusal

    assert refusal(contract(db, contract_id)) is None


def test_a_held_payment_the_bank_disputed_cannot_be_accepted(db, pending_contract, admin):
    from payments.checkout.review import ReviewRefused, accept_held_payment
    from payments.refunds.disputes import mirror_dispute

    contract_id = pending_contract[0]
    held = held_payment(db, contract_id, 19999)
    mirror_dispute({
        "id": "dp_core_lost", "object": "dispute", "payment_intent": held.payment_intent_id,
        "amount": 10000, "currency": "usd", "reason": "fraudulent", "status": "lost",
        "is_charge_refundable": False,
    })
    db.session.commit()
    with pytest.raises(ReviewRefused, match="dispute"):
        accept_held_payment(held.id, db.session.merge(admin), "looks fine")
    db.session.rollback()
    assert contract(db, contract_id).status.value == "pending"
