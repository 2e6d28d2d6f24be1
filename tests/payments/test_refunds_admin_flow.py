"""Admins give money back through the console, and Stripe (the sandbox) answers for real:
approvals at the quote or another amount, bulk approvals where Stripe refuses one,
disputes, a contract cancelled with its refund, an admin's own refund.

The console's checks that never reach Stripe are in tests/admin/test_refunds_admin.py.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape

import pytest
import stripe
from sqlalchemy import select

from tests.conftest import login
from tests.payments.conftest import (
    API_KEY,
    contract_state,
    payments,
    start_checkout,
    wait_until_state,
)
from tests.support import wait_for

PENDING_REFUNDS = {"SANDBOX_REFUND_OUTCOME": "pending"}


@pytest.fixture
def pay(db, student_client, sandbox, pending_contract, make_proposal):
    """Pay a new contract of the fixture's student and coach through Checkout; its id.

    The first call pays `pending_contract` itself.
    """
    from contracts.services import accept_proposal

    _, student, coach = pending_contract
    made = []

    def pay_one() -> int:
        if not made:
            contract_id = pending_contract[0]
        else:
            contract_id = accept_proposal(make_proposal(coach, student),
                                          db.session.merge(student)).id
            db.session.commit()
        made.append(contract_id)
        sandbox.pay(start_checkout(student_client, contract_id))
        wait_until_state(db, contract_id, ("active", "paid"))
        return contract_id

    return pay_one


@pytest.fixture
def ask_refund(app, db, pending_contract):
    """The student asks for a refund through the service; the request's id."""
    from payments.models import RefundCategory
    from payments.refunds import request_refund

    def ask(contract_id: int, student=None) -> int:
        with app.test_request_context():
            request = request_refund(
                contract_id, db.session.merge(student or pending_contract[1]),
                category=RefundCategory.SCHEDULE, reason="My new job leaves no time for it.",
            )
            db.session.commit()
            return request.id

    return ask


@pytest.fixture
def as_admin(student_client, make_user):
    """The same browser, now an admin's, once the student has paid (test clients in one
    thread share the CSRF token, so a second client cannot log in beside the first)."""

    def switch():
        student_client.submit("/auth/logout")
        login(student_client, make_user("admin", name="Ada Admin"))
        return student_client

    return switch


def fresh(db, model, row_id):
    db.session.expire_all()
    return db.session.get(model, row_id)


def refunds_of(db, contract_id: int):
    from payments.models import Refund

    db.session.expire_all()
    return list(db.session.scalars(select(Refund).filter_by(contract_id=contract_id)))


def flashed(client, response) -> str:
    """The page a redirect leads to, as text."""
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return unescape(client.get(response.headers["Location"]).get_data(as_text=True))


@pytest.mark.parametrize("sandbox_knobs", [PENDING_REFUNDS])
def test_approving_at_the_quote_refunds_through_stripe(
    db, pay, ask_refund, as_admin, sandbox, sandbox_knobs
):
    from payments.models import RefundRequest

    contract_id = pay()
    request_id = ask_refund(contract_id)
    admin = as_admin()
    queue = admin.get("/admin/refunds").get_data(as_text=True)
    assert re.search(rf'id="amount-{request_id}"[^>]*value="200.00"', queue)

    response = admin.submit_confirmed("/admin/refunds/approve",
                                      {"request_id": request_id, "amount": "200.00"})
    assert ("Refund of $200.00 accepted by Stripe; the bank has not confirmed it yet."
            in flashed(admin, response))
    request = fresh(db, RefundRequest, request_id)
    assert (request.status.value, request.approved_amount, request.override_reason) == (
        "approved", 20000, None)
    assert request.decided_by.name == "Ada Admin"
    [refund] = refunds_of(db, contract_id)
    assert (refund.status.value, refund.amount, refund.source.value) == (
        "pending", 20000, "student_request")
    assert refund.stripe_refund_id.startswith("re_") and refund.request_id == request_id
    assert contract_state(db, contract_id) == ("active", "paid")  # nothing back yet

    # The bank confirms; Stripe's refund.updated reaches the app through its webhook.
    settled = sandbox.tool(f"refunds/{refund.stripe_refund_id}/settle", outcome="succeeded")
    assert settled.status_code == 200, settled.text
    wait_for(lambda: refunds_of(db, contract_id)[0].status.value == "succeeded",
             what="the refund to succeed")
    wait_until_state(db, contract_id, ("refunded", "refunded"))
    assert payments(db, contract_id)[0].amount_refunded == 20000

    listed = admin.get("/admin/refunds/all?status=succeeded").get_data(as_text=True)
    assert f'data-refund-id="{refund.id}"' in listed and refund.stripe_refund_id in listed
    page = admin.get(f"/admin/contracts/{contract_id}").get_data(as_text=True)
    assert f'id="request-{request_id}" data-status="approved"' in page
    assert 'id="cancel-form"' not in page and 'id="refund-form"' not in page
    assert "Everything paid for this contract has been refunded already." in page


def test_approving_another_amount_with_a_reason_refunds_that_amount(
    db, pay, ask_refund, as_admin
):
    from payments.models import RefundRequest

    contract_id = pay()
    request_id = ask_refund(contract_id)
    admin = as_admin()
    response = admin.submit_confirmed("/admin/refunds/approve", {
        "request_id": request_id, "amount": "150.00",
        "override_reason": "One session took place off the platform."})
    assert "Refunded $150.00." in flashed(admin, response)
    request = fresh(db, RefundRequest, request_id)
    assert (request.status.value, request.approved_amount, request.override_reason) == (
        "approved", 15000, "One session took place off the platform.")
    [refund] = refunds_of(db, contract_id)
    assert (refund.status.value, refund.amount) == ("succeeded", 15000)
    wait_until_state(db, contract_id, ("active", "partially_refunded"))


def test_a_bulk_approval_reports_the_refund_stripe_refused_and_reopens_its_request(
    app, db, pay, ask_refund, as_admin, make_user, make_proposal, clock
):
    from contracts.lifecycle import mark_paid
    from contracts.services import accept_proposal
    from payments.models import Payment, PaymentRecordStatus, RefundRequest

    first, second = pay(), pay()
    # A payment whose intent Stripe has never heard of (say, copied from another account).
    student = make_user("student", name="Tom Learner")
    stray = accept_proposal(make_proposal(student=student), db.session.merge(student))
    db.session.add(Payment(
        contract_id=stray.id, amount=stray.total_amount, currency="usd",
        status=PaymentRecordStatus.SUCCEEDED, checkout_session_id="cs_test_stray",
        payment_intent_id="pi_unknown_to_stripe", paid_at=clock.now(),
    ))
    with app.test_request_context():
        mark_paid(stray, paid_at=clock.now(), details={}, actor_label="stripe:webhook")
        db.session.commit()
    ids = [ask_refund(first), ask_refund(stray.id, student), ask_refund(second)]
    admin = as_admin()

    response = admin.submit_confirmed(
        "/admin/refunds/decide",
        {"request_ids": ids, "approve": "Approve selected at their quotes"})
    html = unescape(response.get_data(as_text=True))
    assert response.status_code == 200
    assert "Approved: 2 of 3" in html
    results = dict(re.findall(r'id="result-(\d+)" data-ok="(\w+)"', html))
    assert results == {str(ids[0]): "yes", str(ids[1]): "no", str(ids[2]): "yes"}
    assert html.count("Refunded $200.00.") == 2
    assert ("Stripe refused the refund of $200.00: No such payment_intent: "
            "'pi_unknown_to_stripe' (resource_missing)") in html

    statuses = [fresh(db, RefundRequest, i).status.value for i in ids]
    assert statuses == ["approved", "open", "approved"]
    assert fresh(db, RefundRequest, ids[1]).decision_note.startswith(
        "The approved refund did not go through: No such payment_intent")
    for contract_id in (first, second):
        [refund] = refunds_of(db, contract_id)
        assert (refund.status.value, refund.amount) == ("succeeded", 20000)
        wait_until_state(db, contract_id, ("refunded", "refunded"))
    [refused] = refunds_of(db, stray.id)
    assert (refused.status.value, refused.stripe_refund_id) == ("failed", None)
    assert contract_state(db, stray.id) == ("active", "paid")
    # Back in the queue for an admin, who sees why.
    queue = admin.get("/admin/refunds").get_data(as_text=True)
    assert re.findall(r'data-request-id="(\d+)"', queue) == [str(ids[1])]


def test_a_dispute_is_listed_with_its_deadline_and_blocks_the_request(
    db, pay, ask_refund, as_admin, sandbox
):
    contract_id = pay()
    request_id = ask_refund(contract_id)
    admin = as_admin()
    client = stripe.StripeClient(API_KEY, base_addresses={"api": sandbox.url},
                                 max_network_retries=0)
    intent = payments(db, contract_id)[0].payment_intent_id
    charge = client.v1.payment_intents.retrieve(intent).latest_charge
    assert sandbox.tool(f"charges/{charge}/dispute", reason="fraudulent").status_code == 200
    wait_until_state(db, contract_id, ("disputed", "disputed"))
    [at_stripe] = client.v1.disputes.list({"charge": charge}).data

    html = admin.get("/admin/disputes").get_data(as_text=True)
    open_table = html[html.index('id="open-disputes"'):html.index("Recently closed")]
    assert at_stripe.id in open_table and "$200.00" in open_table
    assert "fraudulent" in open_table and "needs response" in open_table
    assert f'href="/admin/contracts/{contract_id}"' in open_table
    due = datetime.fromtimestamp(at_stripe.evidence_details.due_by, UTC)
    assert due.strftime("%d %b %Y, %H:%M UTC") in open_table

    queue = unescape(admin.get("/admin/refunds").get_data(as_text=True))
    assert f'id="dispute-{request_id}"' in queue
    response = admin.submit("/admin/refunds/approve",
                            {"request_id": request_id, "amount": "200.00"})
    assert "no refund can be made until the dispute is closed" in response.get_data(as_text=True)
    assert refunds_of(db, contract_id) == []
    dashboard = admin.get("/admin/payments").get_data(as_text=True)
    assert due.strftime("%d %b %Y, %H:%M UTC") in dashboard


def test_cancelling_an_active_contract_refunds_todays_quote(
    app, db, pay, as_admin, pending_contract, clock
):
    from contracts.models import CoachingSession, Contract
    from scheduling.availability import free_slots
    from scheduling.sessions import book_session, cancel_session

    contract_id = pay()
    student = db.session.merge(pending_contract[1])
    # The student cancels a session an hour before it starts: it counts as used.
    with app.test_request_context():
        contract = db.session.get(Contract, contract_id)
        start = free_slots(contract, from_day=clock.now().date(), days=7)[0].starts_at
        booked = book_session(contract_id, student, starts_at=start)
        db.session.commit()
        clock.freeze(start - timedelta(hours=1))
        cancel_session(booked.id, student)
        db.session.commit()
        clock.reset()
    assert fresh(db, CoachingSession, booked.id).late_cancellation
    admin = as_admin()

    url = f"/admin/contracts/{contract_id}"
    page = unescape(admin.get(url).get_data(as_text=True))
    assert re.search(r'id="money-quote">\$150.00<', page)
    assert ("1 of the 4 sessions has been used, so the full refund no longer applies; the "
            "3 sessions not used come back at $50.00 each: $150.00.") in page
    assert "Cancel the contract and refund $150.00" in page

    response = admin.submit_confirmed(f"{url}/cancel-with-refund",
                                      {"reason": "The coach left the platform."})
    shown = flashed(admin, response)
    assert "The contract is cancelled; both parties were told." in shown
    assert "Refunded $150.00." in shown
    [refund] = refunds_of(db, contract_id)
    assert (refund.status.value, refund.amount, refund.source.value) == (
        "succeeded", 15000, "admin")
    assert refund.note == "Contract cancelled: The coach left the platform."
    wait_until_state(db, contract_id, ("cancelled", "partially_refunded"))
    assert payments(db, contract_id)[0].amount_refunded == 15000


def test_an_admins_own_refund_from_the_contract_page(db, pay, as_admin):
    contract_id = pay()
    admin = as_admin()
    url = f"/admin/contracts/{contract_id}"
    response = admin.submit_confirmed(f"{url}/refund",
                                      {"amount": "25.50", "note": "Late start, twice."})
    assert "Refunded $25.50." in flashed(admin, response)
    [refund] = refunds_of(db, contract_id)
    assert (refund.status.value, refund.amount, refund.source.value, refund.note) == (
        "succeeded", 2550, "admin", "Late start, twice.")
    wait_until_state(db, contract_id, ("active", "partially_refunded"))
    page = admin.get(url).get_data(as_text=True)
    assert f'id="refund-{refund.id}"' in page and refund.stripe_refund_id in page
    assert re.search(r'id="money-left">\$174.50<', page)
