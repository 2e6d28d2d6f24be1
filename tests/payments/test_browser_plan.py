"""A payment plan in Chromium: deposit + 3 instalments paid with 4242, the unlocked session
booked, a month later the instalment is charged off-session and another session opens."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from tests.conftest import PASSWORD
from tests.support import log_in, pay_by_card, shot, wait_for

pytestmark = pytest.mark.browser


def book(page, live_url, contract_id, day) -> None:
    """Book the first free slot the booking page offers in the week from `day`."""
    page.goto(f"{live_url}/contracts/{contract_id}")
    page.get_by_role("link", name="Book a session").click()
    page.goto(f"{page.url}?from={day.isoformat()}")
    page.locator("#slots a.cp-slot").first.click()
    page.get_by_role("button", name="Book session").click()


def test_a_student_pays_by_plan_and_sessions_unlock_as_instalments_arrive(
    app, page, live_url, sandbox, db, make_user, make_proposal, clock
):
    from contracts.models import Contract
    from contracts.services import accept_proposal
    from payments import plans

    coach = make_user("coach", name="Maya Lindqvist")
    student = make_user("student", email="ana@example.com", name="Ana Ruiz")
    proposal_id = make_proposal(coach, student, title="Presentation skills",
                                session_count=4, price_per_session=10000)
    contract_id = accept_proposal(proposal_id, db.session.merge(student)).id
    contract = db.session.get(Contract, contract_id)
    contract.plan_deposit_percent, contract.plan_max_instalments = 25, 3
    db.session.commit()

    log_in(page, live_url, "ana@example.com", PASSWORD)
    page.goto(f"{live_url}/contracts/{contract_id}/pay")
    option = page.locator('[data-instalments="3"]')
    assert "$100.00" in option.inner_text()
    page.locator("#plan-3").check()
    shot(page, "plan-choice")
    page.get_by_role("button", name="Continue securely with Stripe").click()
    pay_by_card(page, sandbox.url, "ana@example.com", "Ana Ruiz")
    page.wait_for_url(f"{live_url}/contracts/*/payment-success*")
    assert page.locator("#payment-result").inner_text() == "Payment received"

    # The deposit (25 %) opens one of the four sessions.
    start = datetime.now(UTC).date() + timedelta(days=3)
    book(page, live_url, contract_id, start)
    page.wait_for_url(f"{live_url}/contracts/{contract_id}#sessions")
    # The other three wait for the instalments: no booking is offered for them.
    assert "3 locked until the next instalment" in page.locator("#remaining").inner_text()
    assert page.get_by_role("link", name="Book a session").count() == 0
    shot(page, "plan-locked-session")

    # A month on (both clocks), the first instalment is charged to the saved card.
    plan = plans.plan_of(contract_id)
    due = datetime.combine(plan.instalments[1].due_on, time(9, 5), tzinfo=UTC)
    clock.freeze(due)
    sandbox.tool("clock", offset_seconds=int((due - datetime.now(UTC)).total_seconds()))
    assert plans.due_instalment_ids() == [plan.instalments[1].id]
    with app.test_request_context():  # as the periodic job runs it
        assert plans.charge_instalment(plan.instalments[1].id) == "instalment_paid"
    db.session.expire_all()
    wait_for(lambda: db.session.get(Contract, contract_id).sessions_unlocked == 2, 5,
             "a second session to unlock")
    book(page, live_url, contract_id, due.date() + timedelta(days=2))
    page.wait_for_url(f"{live_url}/contracts/{contract_id}#sessions")
    assert page.locator("#sessions-upcoming .cp-session-time").count() == 1  # the first is past

    page.goto(f"{live_url}/contracts/{contract_id}/payments")
    schedule = page.locator("#plan").inner_text()
    assert schedule.count("Paid") >= 2
    shot(page, "plan-schedule")
    page.goto(f"{live_url}/payment-methods")
    assert "Visa •••• 4242" in page.locator("#cards").inner_text()
    shot(page, "plan-saved-cards")
