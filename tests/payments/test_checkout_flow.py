"""The payments spine end to end: app → SDK → sandbox → signed webhook → app."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.payments.conftest import (
    contract_state,
    payments,
    start_checkout,
    wait_until_state,
)
from tests.support import wait_for


def test_card_payment_activates_the_contract_once(db, student_client, sandbox, pending_contract):
    from audit.models import AuditEntry
    from notifications.models import Notification

    contract_id, student, coach = pending_contract
    session_id = start_checkout(student_client, contract_id)
    assert session_id.startswith("cs_test_")
    [payment] = payments(db, contract_id)
    assert (payment.status.value, payment.amount, payment.currency) == ("pending", 20000, "usd")

    assert sandbox.pay(session_id).status_code == 200
    wait_until_state(db, contract_id, ("active", "paid"))
    [payment] = wait_for(
        lambda: [p for p in payments(db, contract_id) if p.status.value == "succeeded"],
        what="payment succeeded",
    )
    assert payment.payment_intent_id.startswith("pi_") and payment.paid_at is not None

    page = student_client.get(
        f"/contracts/{contract_id}/payment-success?session_id={session_id}"
    ).get_data(as_text=True)
    assert "Payment received" in page and "$200.00" in page and session_id[-8:] in page
    assert "Maya Coach" in page and 'id="receipt"' in page
    [payment] = payments(db, contract_id)
    assert payment.receipt_url and payment.payment_method_type == "card"
    assert contract_state(db, contract_id) == ("active", "paid")
    assert db.session.scalar(
        select(func.count()).select_from(AuditEntry).filter_by(action="contract.paid")
    ) == 1
    # Each party is told of the payment once (the coach heard of the acceptance before).
    notes = db.session.scalars(select(Notification.message).filter_by(user_id=coach.id))
    assert len([m for m in notes if "paid $200.00" in m]) == 1
    student_notes = db.session.scalars(select(Notification.message).filter_by(user_id=student.id))
    assert [m for m in student_notes if "payment of $200.00" in m] == [
        "Your payment of $200.00 for “Interview coaching” is confirmed. "
        "You can book your sessions with Maya Coach now."
    ]


def test_paid_contract_is_not_charged_again(db, student_client, sandbox, pending_contract):
    contract_id = pending_contract[0]
    sandbox.pay(start_checkout(student_client, contract_id))
    wait_until_state(db, contract_id, ("active", "paid"))
    response = student_client.submit(f"/contracts/{contract_id}/pay")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/contracts/{contract_id}"
    assert len(payments(db, contract_id)) == 1


def test_pay_twice_reuses_the_open_session(db, student_client, sandbox, pending_contract):
    contract_id = pending_contract[0]
    first = start_checkout(student_client, contract_id)
    second = start_checkout(student_client, contract_id)
    assert first == second
    assert len(payments(db, contract_id)) == 1


@pytest.mark.parametrize(
    ("card", "reason"),
    [("4000000000000002", "Your card was declined."),
     ("4000000000009995", "Your card has insufficient funds.")],
)
def test_declined_card_records_the_reason_and_the_student_can_retry(
    db, student_client, sandbox, pending_contract, card, reason
):
    contract_id = pending_contract[0]
    session_id = start_checkout(student_client, contract_id)
    assert sandbox.pay(session_id, card_number=card).status_code == 402
    wait_until_state(db, contract_id, ("pending", "failed"))
    [payment] = payments(db, contract_id)
    assert payment.status.value == "failed" and reason in payment.failure_reason
    page = student_client.get(f"/contracts/{contract_id}/pay").get_data(as_text=True)
    assert reason in page and "did not go through" in page

    # The Checkout session stays open: the retry lands on it and succeeds.
    assert start_checkout(student_client, contract_id) == session_id
    assert sandbox.pay(session_id).status_code == 200
    wait_until_state(db, contract_id, ("active", "paid"))


@pytest.mark.parametrize(("outcome", "state"), [("succeeded", ("active", "paid")),
                                                ("failed", ("pending", "failed"))])
def test_three_d_secure(db, student_client, sandbox, pending_contract, outcome, state):
    contract_id = pending_contract[0]
    session_id = start_checkout(student_client, contract_id)
    sandbox.pay(session_id, card_number="4000002500003155")
    assert contract_state(db, contract_id) == ("pending", "pending")
    sandbox.tool(f"checkout/sessions/{session_id}/authenticate", outcome=outcome)
    wait_until_state(db, contract_id, state)


@pytest.mark.parametrize(
    ("account", "state", "record"),
    [("000123456789", ("active", "paid"), "succeeded"),
     ("000111111113", ("pending", "failed"), "failed")],
)
def test_bank_debit_is_processing_then_settles(
    db, student_client, sandbox, pending_contract, account, state, record
):
    contract_id = pending_contract[0]
    session_id = start_checkout(student_client, contract_id)
    assert sandbox.pay(session_id, bank_account=account).status_code == 200
    wait_for(lambda: [p for p in payments(db, contract_id) if p.status.value == "processing"],
             what="payment processing")
    # The contract knows its debit is on its way (no second payment is offered).
    assert contract_state(db, contract_id) == ("pending", "processing")
    page = student_client.get(
        f"/contracts/{contract_id}/payment-success?session_id={session_id}"
    ).get_data(as_text=True)
    assert "Payment processing" in page
    assert contract_state(db, contract_id) == ("pending", "processing")

    sandbox.tool(f"checkout/sessions/{session_id}/settle")
    wait_until_state(db, contract_id, state)
    wait_for(lambda: payments(db, contract_id)[0].status.value == record, what=record)


def test_cancel_page_and_retry(db, student_client, sandbox, pending_contract):
    contract_id = pending_contract[0]
    session_id = start_checkout(student_client, contract_id)
    page = student_client.get(f"/contracts/{contract_id}/payment-cancel").get_data(as_text=True)
    assert "Nothing was charged" in page and "stays" in page and "Try again" in page
    assert contract_state(db, contract_id) == ("pending", "pending")
    assert start_checkout(student_client, contract_id) == session_id


def test_expired_session_leaves_the_contract_pending_and_a_new_one_is_made(
    db, student_client, sandbox, pending_contract
):
    contract_id = pending_contract[0]
    session_id = start_checkout(student_client, contract_id)
    sandbox.tool(f"checkout/sessions/{session_id}/expire-now")
    wait_for(lambda: payments(db, contract_id)[0].status.value == "expired", what="expired")
    assert contract_state(db, contract_id) == ("pending", "pending")
    assert sandbox.pay(session_id).status_code != 200
    fresh = start_checkout(student_client, contract_id)
    assert fresh != session_id
    sandbox.pay(fresh)
    wait_until_state(db, contract_id, ("active", "paid"))


def test_someone_elses_contract_is_404(db, client, make_user, sandbox, pending_contract):
    from tests.conftest import login

    contract_id = pending_contract[0]
    login(client, make_user("student"))
    assert client.get(f"/contracts/{contract_id}/pay").status_code == 404
    assert client.submit(f"/contracts/{contract_id}/pay").status_code == 404
    assert payments(db, contract_id) == []


def test_success_page_with_a_made_up_or_unpaid_session_activates_nothing(
    db, student_client, sandbox, pending_contract
):
    contract_id = pending_contract[0]
    made_up = student_client.get(
        f"/contracts/{contract_id}/payment-success?session_id=cs_test_made_up"
    )
    assert made_up.status_code == 404
    assert "could not find that payment" in made_up.get_data(as_text=True)
    session_id = start_checkout(student_client, contract_id)
    unpaid = student_client.get(
        f"/contracts/{contract_id}/payment-success?session_id={session_id}"
    )
    assert "Payment not completed" in unpaid.get_data(as_text=True)
    assert contract_state(db, contract_id) == ("pending", "pending")


@pytest.mark.parametrize("sandbox_knobs", [{"SANDBOX_HOLD_EVENTS": "1"}])
def test_success_page_fulfils_when_the_webhook_is_late(
    db, student_client, sandbox, pending_contract, sandbox_knobs
):
    contract_id = pending_contract[0]
    session_id = start_checkout(student_client, contract_id)
    sandbox.pay(session_id)
    assert contract_state(db, contract_id) == ("pending", "pending")
    page = student_client.get(
        f"/contracts/{contract_id}/payment-success?session_id={session_id}"
    ).get_data(as_text=True)
    assert "Payment received" in page and 'id="receipt"' in page
    assert contract_state(db, contract_id) == ("active", "paid")


@pytest.mark.parametrize("sandbox_knobs", [{"SANDBOX_HOLD_EVENTS": "1"}])
def test_reconcile_recovers_a_dropped_webhook(
    db, runner, student_client, sandbox, pending_contract, sandbox_knobs
):
    contract_id = pending_contract[0]
    sandbox.pay(start_checkout(student_client, contract_id))
    assert contract_state(db, contract_id) == ("pending", "pending")
    result = runner.invoke(args=["payments", "reconcile", "--since", "1h"])
    assert result.exit_code == 0, result.output
    # checkout.session.completed and payment_intent.succeeded (handled for plans' charges).
    assert "2 added to the inbox, 0 already there" in result.output
    # The pipeline applied the added event (jobs run at once in the tests).
    assert contract_state(db, contract_id) == ("active", "paid")
    again = runner.invoke(args=["payments", "reconcile", "--since", "1h"])
    assert "0 added to the inbox, 2 already there" in again.output


def test_a_second_paid_session_is_refunded_in_full(db, student_client, sandbox, pending_contract):
    from datetime import timedelta

    from clock import now as utcnow

    contract_id = pending_contract[0]
    first = start_checkout(student_client, contract_id)
    # Make the first session look too old to reuse, so the next press opens another one.
    [payment] = payments(db, contract_id)
    payment.expires_at = utcnow() + timedelta(minutes=1)
    db.session.commit()
    second = start_checkout(student_client, contract_id)
    assert second != first

    sandbox.pay(first)
    wait_until_state(db, contract_id, ("active", "paid"))
    sandbox.pay(second)
    refunded = wait_for(
        lambda: [p for p in payments(db, contract_id) if p.status.value == "refunded"],
        what="the duplicate payment refunded",
    )
    assert [p.checkout_session_id for p in refunded] == [second]
    assert refunded[0].amount_refunded == 20000
    assert contract_state(db, contract_id) == ("active", "paid")


def test_a_double_click_makes_one_session(app, db, sandbox, pending_contract):
    """Two pay requests at once (a double-click) get the same Checkout session."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from tests.conftest import login

    contract_id, student, _ = pending_contract
    clients = [app.test_client(), app.test_client()]

    def log_in(each) -> str:
        # In a thread of its own, each client's requests get their own app context
        # (the test's context would share `g`, where the login and CSRF token are cached).
        login(each, student)
        return each.csrf_token()

    with ThreadPoolExecutor(max_workers=1) as pool:
        tokens = [pool.submit(log_in, each).result() for each in clients]
    barrier = threading.Barrier(2)
    locations: list[str] = []

    def press(each, token):
        barrier.wait()
        response = each.post(f"/contracts/{contract_id}/pay", data={"csrf_token": token})
        locations.append(response.headers.get("Location", str(response.status_code)))

    pairs = zip(clients, tokens, strict=True)
    threads = [threading.Thread(target=press, args=pair) for pair in pairs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(locations) == 2 and locations[0] == locations[1], locations
    assert len(payments(db, contract_id)) == 1


def test_a_session_paid_after_the_contract_was_cancelled_is_refunded(
    db, student_client, sandbox, pending_contract
):
    """The Checkout tab was still open when the contract was cancelled; the money goes back."""
    from notifications.models import Notification

    contract_id, student, coach = pending_contract
    session_id = start_checkout(student_client, contract_id)
    cancelled = student_client.submit(f"/contracts/{contract_id}/cancel",
                                      {"reason": "I found another coach"})
    assert cancelled.status_code == 302
    sandbox.pay(session_id)
    refunded = wait_for(
        lambda: [p for p in payments(db, contract_id) if p.status.value == "refunded"],
        what="the late payment refunded",
    )
    assert refunded[0].void_reason.value == "closed"
    assert contract_state(db, contract_id) == ("cancelled", "pending")
    db.session.expire_all()
    messages = [n.message for n in db.session.scalars(db.select(Notification))]
    assert sum("arrived after the contract was cancelled" in m for m in messages) == 2
