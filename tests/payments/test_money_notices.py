"""People are told when money fails, and the pages say what a failed instalment waits for.

A bank debit that fails after "Processing…" tells the student (with another way to pay)
and the coach, once, however often its event comes. A declined instalment reads
"Declined — retrying on …" with its attempts and the student's next step, on the
student's Payments page and on the admin's contract page.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from tests.conftest import login
from tests.payments.conftest import deliver, payments, wait_until_state
from tests.payments.test_dashboard_refunds import anew, notices, outcome
from tests.payments.test_plans_flow import (  # noqa: F401 (fixtures)
    at,
    charge_at,
    instalment,
    on_plan,
    plan_contract,
    request_context,
    saved_card,
)
from tests.payments.test_processing_guard import DEBIT_FAILS, pay_by_bank_debit
from tests.payments.test_refund_requests import log_in_as, text_of
from tests.support import wait_for

DUE = datetime(2027, 4, 10, 9, 0, tzinfo=UTC)


def debit_notices(db, user) -> list[str]:
    return [m for m in notices(db, user) if "bank debit" in m]


def test_a_failed_bank_debit_tells_the_student_and_the_coach_once(
    db, client, student_client, sandbox, pending_contract
):
    from notifications.models import Notification, OutboxMail

    contract_id, student, coach = pending_contract
    session_id = pay_by_bank_debit(db, student_client, sandbox, contract_id, DEBIT_FAILS)
    sandbox.tool(f"checkout/sessions/{session_id}/settle")
    wait_until_state(db, contract_id, ("pending", "failed"))
    wait_for(lambda: debit_notices(db, coach), what="the coach told")

    [told] = debit_notices(db, student)
    assert told == ("Your bank debit of $200.00 for “Interview coaching” did not go through. "
                    "Nothing was taken. You can pay another way, by card for instance, on "
                    "the contract's pay page.")
    row = db.session.scalar(select(Notification).filter_by(user_id=student.id, message=told))
    assert row.link == f"/contracts/{contract_id}/pay"
    [mail] = db.session.scalars(select(OutboxMail).filter_by(recipient=student.email).where(
        OutboxMail.subject.contains("bank debit")))
    assert f"/contracts/{contract_id}/pay" in mail.body
    assert debit_notices(db, coach) == [
        "Ana Student's bank debit of $200.00 for “Interview coaching” did not go through. They "
        "have been asked to pay another way; there is nothing for you to do."]

    # Stripe delivers the event again, under its own id and under a new one: no one is
    # told twice.
    # (the session's event and its intent's both say so; the first to come tells).
    [event] = sandbox.events("checkout.session.async_payment_failed")
    [intent_event] = sandbox.events("payment_intent.payment_failed")
    for again in (event, anew(event), intent_event, anew(intent_event)):
        assert deliver(client, again).status_code == 200
    assert outcome(db, anew(event)) == ("processed", "stale")
    assert len(debit_notices(db, student)) == 1 and len(debit_notices(db, coach)) == 1
    [payment] = payments(db, contract_id)
    assert payment.status.value == "failed"

    # The student's Payments page names how it was tried.
    mine = student_client.get("/payments").get_data(as_text=True)
    row = mine[mine.index(f'data-payment="{payment.id}"'):]
    assert ">US bank account</td>" in row[:row.index("</tr>")] and "Us bank" not in mine
    # The pay page the notice links to offers the contract again.
    page = student_client.get(f"/contracts/{contract_id}/pay").get_data(as_text=True)
    assert 'id="pay-button"' in page


@pytest.fixture
def declined(db, sandbox, on_plan, at):  # noqa: F811
    """Instalment 1 of the plan declined once on its day: retried on 11 April."""
    contract_id = on_plan[0]
    card = saved_card(sandbox, db, contract_id)
    assert sandbox.tool(f"payment_methods/{card}/next", outcome="decline").status_code == 200
    assert charge_at(at, db, contract_id, 1, DUE) == "retry_scheduled"
    return on_plan


def test_a_declined_instalment_reads_declined_with_its_retry_on_the_students_page(
    db, client, declined
):
    contract_id, student, _ = declined
    first = instalment(db, contract_id, 1)
    login(client, student)
    html = client.get("/payments").get_data(as_text=True)
    row = html[html.index(f'data-instalment="{first.id}"'):]
    row = " ".join(row[:row.index("</tr>")].split())
    assert 'data-status="declined"' in row
    assert "Declined — retrying on 11 Apr" in row
    assert "1 attempt so far · Your card has insufficient funds." in row
    assert "We try your card again on 11 Apr." in row
    assert 'href="/payment-methods"' in row and "Update your card" in row
    assert "Scheduled" not in row
    assert "cp-pay-instalment" not in row  # the retry may charge it: no second way to pay
    # Its payment row says how it was tried: by card.
    [tried] = [p for p in payments(db, contract_id) if p.instalment_id == first.id]
    method = html[html.index(f'data-payment="{tried.id}"'):]
    method = method[:method.index("</tr>")]
    assert ">Card</td>" in method and "Your card has insufficient funds." in method

    # The contract's own payments page reads the same.
    history = client.get(f"/contracts/{contract_id}/payments").get_data(as_text=True)
    assert "Declined — retrying on 11 Apr" in text_of(history, "plan-schedule")


def test_a_declined_instalment_reads_declined_on_the_admin_contract_page(
    db, client, declined, make_user
):
    contract_id = declined[0]
    first = instalment(db, contract_id, 1)
    log_in_as(client, make_user("admin", name="Ada Admin"))
    html = client.get(f"/admin/contracts/{contract_id}").get_data(as_text=True)
    status = text_of(html, f"instalment-status-{first.id}")
    assert status.startswith("Declined — retrying on 11 Apr")
    assert "1 attempt so far · Your card has insufficient funds." in status
    row = html[html.index(f'id="instalment-{first.id}"'):]
    row = " ".join(row[:row.index("</tr>")].split())
    assert "failed · <span class=\"cp-method\">card</span>" in row
    assert "Update your card" not in row  # the admin's page names no student buttons


def test_past_its_last_retry_the_student_is_offered_to_pay_it_now(
    db, client, sandbox, declined, at  # noqa: F811
):
    from datetime import timedelta

    contract_id, student, _ = declined
    for days in (1, 3, 7):
        charge_at(at, db, contract_id, 1, DUE + timedelta(days=days))
    first = instalment(db, contract_id, 1)
    assert first.status.value == "failed"
    login(client, student)
    html = client.get("/payments").get_data(as_text=True)
    row = html[html.index(f'data-instalment="{first.id}"'):]
    row = " ".join(row[:row.index("</tr>")].split())
    assert "Declined 4 times, no more retries" in row
    assert f'href="/contracts/{contract_id}/instalments/{first.id}/pay"' in row
