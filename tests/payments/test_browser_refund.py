"""Money back in Chromium: a student asks, an admin approves, Stripe refunds, both pages follow."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.conftest import PASSWORD
from tests.payments.conftest import wait_until_state
from tests.support import log_in, shot

pytestmark = pytest.mark.browser


def log_out(page) -> None:
    page.get_by_role("button", name="Log out").click()


def test_a_refund_asked_approved_and_seen_by_both_parties(page, live_url, db, paid, make_user):
    contract_id, student, coach = paid
    admin = make_user("admin", email="ada@example.com", name="Ada Admin")

    log_in(page, live_url, coach.email, PASSWORD)
    page.goto(f"{live_url}/earnings")
    net = page.locator(f'#earnings tr[data-contract="{contract_id}"] [data-col="net_earning"]')
    assert net.inner_text() == "$190.00"  # $200.00 less the 5 % fee
    log_out(page)

    log_in(page, live_url, student.email, PASSWORD)
    page.goto(f"{live_url}/contracts/{contract_id}")
    page.get_by_role("link", name="Request a refund for this contract").click()
    assert page.locator("#quote-amount").inner_text() == "$200.00"
    assert "full total" in page.locator("#quote-explanation").inner_text()
    page.get_by_label("What went wrong").select_option(
        label="The sessions no longer fit my schedule")
    page.get_by_label("Tell the administrator why you are asking").fill(
        "My new job leaves me no evenings for sessions.")
    shot(page, "refund-request-form")
    page.get_by_role("button", name="Ask for a refund of $200.00").click()
    assert "Your request was sent" in page.locator(".alert").first.inner_text()
    assert page.locator("#open-request-quote").inner_text() == "$200.00"
    shot(page, "refund-request-sent")
    log_out(page)

    page.goto(f"{live_url}/auth/login")
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_url}/admin/**")
    page.locator("#admin-nav").get_by_role("link", name="Refunds").click()
    request = page.locator("[data-request-id]").first
    assert "My new job" in request.inner_text()
    assert request.get_by_label("Amount (USD)").input_value() == "200.00"
    shot(page, "admin-refund-queue")
    request.get_by_role("button", name="Approve and refund").click()
    # Nothing has moved yet: the confirmation restates it, then the admin confirms.
    confirmation = page.locator("#confirmation")
    assert "Approve request" in confirmation.inner_text()
    assert "$200.00 (USD)" in page.locator("#confirm-figures").inner_text()
    shot(page, "admin-refund-confirm")
    page.get_by_role("button", name="Approve and refund $200.00").click()
    assert "Refunded $200.00" in page.locator(".alert").first.inner_text()
    assert page.locator("#requests-empty").is_visible()
    wait_until_state(db, contract_id, ("refunded", "refunded"))
    log_out(page)

    log_in(page, live_url, student.email, PASSWORD)
    page.goto(f"{live_url}/payments")
    payments_table = page.locator("#my-payments").inner_text()
    assert "$200.00" in payments_table and "succeeded" in payments_table.lower()
    shot(page, "student-payments-refunded")
    log_out(page)

    log_in(page, live_url, coach.email, PASSWORD)
    page.goto(f"{live_url}/earnings")
    assert net.inner_text() == "$0.00"
    shot(page, "coach-earnings-refunded")


def test_the_student_withdraws_and_the_coach_gives_money_back(page, live_url, db, paid):
    contract_id, student, coach = paid

    log_in(page, live_url, student.email, PASSWORD)
    page.goto(f"{live_url}/contracts/{contract_id}/refund")
    page.get_by_label("What went wrong").select_option(label="Personal or financial reasons")
    page.get_by_label("Tell the administrator why you are asking").fill(
        "I thought I could not afford it, but I can after all.")
    page.get_by_role("button", name="Ask for a refund of $200.00").click()
    shot(page, "refund-request-withdrawable")
    page.get_by_role("button", name="Withdraw this request").click()
    assert "Your refund request was withdrawn" in page.locator(".alert").first.inner_text()
    assert page.locator('#refund-decisions [data-status="withdrawn"]').is_visible()
    assert page.locator("#refund-form").is_visible()  # free to ask again
    shot(page, "refund-request-withdrawn")
    log_out(page)

    log_in(page, live_url, coach.email, PASSWORD)
    page.goto(f"{live_url}/contracts/{contract_id}")
    page.get_by_role("link", name="Give money back").click()
    assert page.locator("#offer-policy").inner_text() == "$200.00"
    assert "Withdrawn by the student" in page.locator("#offer-requests").inner_text()
    page.get_by_label("Amount to give back").fill("0")
    page.get_by_label("Why (the student sees this)").fill("Our third session was cut short.")
    page.get_by_role("button", name="Continue").click()
    assert "more than zero" in page.locator("#amount-error").inner_text()
    page.get_by_label("Amount to give back").fill("50")
    shot(page, "coach-refund-offer-form")
    page.get_by_role("button", name="Continue").click()
    assert page.locator("#confirm-amount").inner_text() == "$50.00"
    assert "Ana Student" in page.locator("#confirm-student").inner_text()
    shot(page, "coach-refund-offer-confirm")
    page.get_by_role("button", name="Refund $50.00 now").click()
    assert "Refunded $50.00." in page.locator(".alert").first.inner_text()
    assert "$50.00" in page.locator("#offer-refunds").inner_text()
    shot(page, "coach-refund-offer-done")
    wait_until_state(db, contract_id, ("active", "partially_refunded"))
    log_out(page)

    log_in(page, live_url, student.email, PASSWORD)
    page.goto(f"{live_url}/contracts/{contract_id}/refund")
    refunds_table = page.locator("#contract-refunds").inner_text()
    assert "$50.00" in refunds_table and "Given back by your coach" in refunds_table
    shot(page, "student-sees-coach-refund")


def test_an_admin_refunds_through_the_confirmation_with_javascript_off(
    browser, live_url, db, paid, admin
):
    """The confirmation is a plain form: it works in a browser running no script."""
    from payments.models import Refund

    contract_id, student, coach = paid
    context = browser.new_context(viewport={"width": 1280, "height": 900},
                                  java_script_enabled=False)
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        page.goto(f"{live_url}/auth/login")
        page.get_by_label("Email").fill(admin.email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(f"{live_url}/admin/**")
        page.goto(f"{live_url}/admin/contracts/{contract_id}")
        form = page.locator("#refund-form")
        form.get_by_label("Amount (USD)").fill("50.00")
        form.get_by_label("Why (kept with the refund)").fill("The first session started late.")
        form.get_by_role("button", name="Refund").click()

        figures = page.locator("#confirm-figures").inner_text()
        assert page.locator("#confirm-question").inner_text() == (
            f"Refund $50.00 to {student.name}?")
        for words in ("$50.00 (USD)", f"“{_title(db, contract_id)}”", student.name, coach.name,
                      "$200.00"):
            assert words in figures, words
        assert f"$50.00 goes back to {student.name}'s card" in page.locator(
            "#confirm-happens").inner_text()
        assert db.session.scalars(select(Refund)).all() == []  # nothing has moved yet
        shot(page, "admin-refund-confirm-no-js")

        page.get_by_role("button", name="Refund $50.00").click()
        page.wait_for_url(f"{live_url}/admin/contracts/{contract_id}*")
        assert "$50.00" in page.locator(".alert").first.inner_text()
        db.session.expire_all()
        [refund] = db.session.scalars(select(Refund)).all()
        assert (refund.amount, refund.note) == (5000, "The first session started late.")
        shot(page, "admin-refund-confirmed-no-js")
    finally:
        context.close()


def _title(db, contract_id: int) -> str:
    from contracts.models import Contract

    return db.session.get(Contract, contract_id).title
