"""A bank debit on its way offers no second payment; how attempts read in their table."""

from __future__ import annotations

import pytest

from tests.payments.conftest import payments, start_checkout, wait_until_state
from tests.support import wait_for

DEBIT_OK = "000123456789"
DEBIT_FAILS = "000111111113"
ON_ITS_WAY = "A payment for this contract is on its way (a bank debit takes a few days)"


def pay_by_bank_debit(db, client, sandbox, contract_id: int, account: str = DEBIT_OK) -> str:
    """Pay through Checkout by bank debit; returns the session id once the attempt is processing."""
    session_id = start_checkout(client, contract_id)
    assert sandbox.pay(session_id, bank_account=account).status_code == 200
    wait_for(lambda: [p for p in payments(db, contract_id) if p.status.value == "processing"],
             what="payment processing")
    return session_id


def test_the_pay_page_says_the_payment_is_on_its_way(db, student_client, sandbox, pending_contract):
    contract_id = pending_contract[0]
    pay_by_bank_debit(db, student_client, sandbox, contract_id)
    page = student_client.get(f"/contracts/{contract_id}/pay").get_data(as_text=True)
    assert ON_ITS_WAY in page and 'id="payment-on-its-way"' in page
    assert 'id="pay-button"' not in page


def test_pressing_pay_again_starts_no_second_checkout(
    db, student_client, sandbox, pending_contract
):
    contract_id = pending_contract[0]
    pay_by_bank_debit(db, student_client, sandbox, contract_id)
    response = student_client.submit(f"/contracts/{contract_id}/pay", follow_redirects=True)
    assert response.request.path == f"/contracts/{contract_id}"
    assert ON_ITS_WAY in response.get_data(as_text=True)
    [payment] = payments(db, contract_id)
    assert payment.status.value == "processing"


def test_start_checkout_refuses_while_a_debit_is_processing(
    app, db, student_client, sandbox, pending_contract
):
    from payments import checkout

    contract_id, student, _ = pending_contract
    pay_by_bank_debit(db, student_client, sandbox, contract_id)
    with app.test_request_context(), pytest.raises(checkout.NotPayable) as refused:
        checkout.start_checkout(contract_id, db.session.merge(student))
    assert str(refused.value) == (
        "A payment for this contract is on its way (a bank debit takes a few days); "
        "nothing more to pay now."
    )
    db.session.rollback()
    assert len(payments(db, contract_id)) == 1


def test_a_failed_debit_lets_the_student_pay_again(db, student_client, sandbox, pending_contract):
    contract_id = pending_contract[0]
    session_id = pay_by_bank_debit(db, student_client, sandbox, contract_id, DEBIT_FAILS)
    sandbox.tool(f"checkout/sessions/{session_id}/settle")
    wait_until_state(db, contract_id, ("pending", "failed"))
    page = student_client.get(f"/contracts/{contract_id}/pay").get_data(as_text=True)
    assert 'id="pay-button"' in page and ON_ITS_WAY not in page


def test_the_contract_page_offers_no_pay_button(db, student_client, sandbox, pending_contract):
    contract_id = pending_contract[0]
    pay_by_bank_debit(db, student_client, sandbox, contract_id)
    page = student_client.get(f"/contracts/{contract_id}").get_data(as_text=True)
    assert f'href="/contracts/{contract_id}/pay"' not in page
    assert "on its way" in page


# --- the attempts table: an earlier decline is not the outcome of a paid attempt ---------


def test_a_paid_attempt_shows_no_failure_message(db, student_client, pending_contract):
    from payments.models import Payment, PaymentRecordStatus

    contract_id = pending_contract[0]
    decline = "Your card was declined."
    db.session.add_all([
        Payment(contract_id=contract_id, checkout_session_id="cs_test_failed",
                amount=20000, currency="usd", status=PaymentRecordStatus.FAILED,
                failure_reason="Your card has insufficient funds."),
        Payment(contract_id=contract_id, checkout_session_id="cs_test_paid",
                amount=20000, currency="usd", status=PaymentRecordStatus.SUCCEEDED,
                failure_reason=decline),
    ])
    db.session.commit()
    page = student_client.get(f"/contracts/{contract_id}/payments").get_data(as_text=True)
    # A payment that went through did not fail: a decline left on it is not shown.
    assert decline not in page and "attempt-earlier-decline" not in page
    assert (
        '<div class="small text-danger attempt-error">Your card has insufficient funds.</div>'
    ) in page
    assert page.count("text-danger attempt-error") == 1
