"""A student pays a contract by a payment plan, through the pages, against the sandbox.

The deposit goes through Checkout at the sandbox with the card saved for later
(`setup_future_usage`); the return page fulfils it, as it does when a webhook is
slow. The schedule, the sessions it unlocks, the saved cards and an instalment
paid by hand are then read from the student's own pages.
"""

from __future__ import annotations

import html as html_lib
import re

import pytest
from sqlalchemy import select

from tests.conftest import login
from tests.payments.conftest import count, payments, wait_until_state
from tests.payments.test_refund_requests import log_in_as, text_of

TOTAL = 20000  # 4 sessions at $50.00
MASTERCARD = "5555555555554444"


def words(html: str) -> str:
    return " ".join(html_lib.unescape(html).split())


def page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return html_lib.unescape(response.get_data(as_text=True))


def session_id_of(response) -> str:
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    return response.headers["Location"].rstrip("/").rsplit("/", 1)[-1]


def plan_of(db, contract_id: int):
    from payments.models import PaymentPlan

    db.session.expire_all()
    return db.session.scalar(select(PaymentPlan).filter_by(contract_id=contract_id))


def contract_of(db, contract_id: int):
    from contracts.models import Contract

    db.session.expire_all()
    return db.session.get(Contract, contract_id)


@pytest.fixture
def plan_contract(make_plan_contract):
    """A pending $200.00 contract offering a 25 % deposit and up to 3 instalments."""
    return make_plan_contract(5000)


@pytest.fixture
def plan_client(client, plan_contract):
    login(client, plan_contract[1])
    return client


@pytest.fixture
def on_plan(db, plan_client, sandbox, plan_contract):
    """The deposit of the 3-instalment plan paid by card at the sandbox; the return page
    fulfils it. Returns (contract id, student, coach)."""
    contract_id = plan_contract[0]
    session_id = session_id_of(plan_client.submit(f"/contracts/{contract_id}/pay", {"plan": "3"}))
    assert sandbox.pay(session_id).status_code == 200
    plan_client.get(f"/contracts/{contract_id}/payment-success?session_id={session_id}")
    wait_until_state(db, contract_id, ("active", "partially_paid"))
    return plan_contract


def schedules(html: str) -> dict[int, list[tuple[str, int]]]:
    """Each plan option's schedule on the pay page: (date cell, amount) per charge."""
    found = {}
    for count_, body in re.findall(
        r'<table[^>]*id="schedule-(\d+)"[^>]*>(.*?)</table>', html, re.S
    ):
        rows = re.findall(
            r'<tr data-number="\d+">\s*<td>[^<]*</td>\s*<td[^>]*>([^<]*)</td>\s*'
            r'<td[^>]*data-amount="(\d+)"', body)
        found[int(count_)] = [(when.strip(), int(amount)) for when, amount in rows]
    return found


def test_the_pay_page_offers_each_plan_with_its_schedule(db, plan_client, sandbox,
                                                         plan_contract, clock):
    from contracts.plans import add_months

    contract_id = plan_contract[0]
    html = page(plan_client, f"/contracts/{contract_id}/pay")
    today = clock.now().date()
    assert re.search(r'<input[^>]*id="plan-full"[^>]*value="full"[^>]*checked', html)
    choices = text_of(html, "plan-choices")
    assert "Pay in full : $200.00 today" in choices
    found = schedules(html)
    assert sorted(found) == [2, 3]
    for instalments, rows in found.items():
        assert len(rows) == instalments + 1
        assert sum(amount for _, amount in rows) == TOTAL  # to the cent
        assert rows[0] == ("Today", 5000)  # the 25 % deposit
        assert [when for when, _ in rows[1:]] == [
            add_months(today, k).strftime("%d %b %Y") for k in range(1, instalments + 1)]
    assert [amount for _, amount in found[2]] == [5000, 7500, 7500]
    assert [amount for _, amount in found[3]] == [5000, 5000, 5000, 5000]
    assert "A 25 % deposit and 3 monthly instalments : $50.00 today" in choices
    assert "Continue securely with Stripe" in html


def test_a_contract_without_a_plan_is_paid_in_full_as_before(db, student_client, sandbox,
                                                             pending_contract):
    contract_id = pending_contract[0]
    html = page(student_client, f"/contracts/{contract_id}/pay")
    assert 'id="plan-choices"' not in html and "Pay $200.00 securely with Stripe" in html
    refused = student_client.submit(f"/contracts/{contract_id}/pay", {"plan": "3"})
    assert refused.status_code == 200
    assert "Choose one of the ways to pay shown here." in text_of(
        refused.get_data(as_text=True), "plan-error")
    assert payments(db, contract_id) == []


@pytest.mark.parametrize(
    ("choice", "message"),
    [({"plan": "4"}, "Choose one of the ways to pay shown here."),
     ({"plan": "abc"}, "Choose one of the ways to pay shown here."),
     ({"plan": ""}, "Choose one of the ways to pay shown here."),
     ({}, "Choose how to pay: in full, or by one of the plans.")],
)
def test_a_bad_choice_shows_the_page_again_and_writes_nothing(db, plan_client, sandbox,
                                                              plan_contract, choice, message):
    contract_id = plan_contract[0]
    response = plan_client.submit(f"/contracts/{contract_id}/pay", choice)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert message in text_of(html, "plan-error")
    assert 'id="schedule-3"' in html
    assert payments(db, contract_id) == []


def test_choosing_three_instalments_sends_the_student_to_checkout_for_the_deposit(
    db, plan_client, sandbox, plan_contract
):
    contract_id = plan_contract[0]
    response = plan_client.submit(f"/contracts/{contract_id}/pay", {"plan": "3"})
    session_id = session_id_of(response)
    assert session_id.startswith("cs_test_")
    [payment] = payments(db, contract_id)
    assert (payment.amount, payment.status.value) == (5000, "pending")
    assert payment.stripe_metadata["plan_instalments"] == "3"
    # Paying in full instead is another session, for the total.
    full = session_id_of(plan_client.submit(f"/contracts/{contract_id}/pay", {"plan": "full"}))
    assert full != session_id
    assert sorted(p.amount for p in payments(db, contract_id)) == [5000, TOTAL]


def test_after_the_deposit_the_plan_and_its_schedule_show_on_the_pages(db, plan_client,
                                                                        on_plan):
    from payments.models import Instalment

    contract_id = on_plan[0]
    contract = contract_of(db, contract_id)
    assert (contract.amount_paid, contract.plan_instalments) == (5000, 3)
    plan = plan_of(db, contract_id)
    assert (plan.status.value, plan.instalment_count, plan.deposit_percent) == ("active", 3, 25)
    rows = list(db.session.scalars(
        select(Instalment).filter_by(plan_id=plan.id).order_by(Instalment.number)))
    assert [(i.number, i.amount, i.status.value) for i in rows] == [
        (0, 5000, "paid"), (1, 5000, "scheduled"), (2, 5000, "scheduled"),
        (3, 5000, "scheduled")]

    # The per-contract payments page: the schedule and the plan's status.
    history = page(plan_client, f"/contracts/{contract_id}/payments")
    assert text_of(history, "plan-status") == "Active"
    schedule = text_of(history, "plan-schedule")
    assert schedule.startswith("# Due Amount Status Deposit")
    for i in rows:
        assert f'data-instalment="{i.id}" data-number="{i.number}" data-status="{i.status.value}"' \
            in history
        assert i.due_on.strftime("%d %b %Y") in schedule
    assert schedule.count("Scheduled") == 3 and schedule.count("Paid") == 1
    assert "$50.00 of $200.00 paid" in words(history)

    # The Payments page: the same schedule, under the contract's title.
    mine = page(plan_client, "/payments")
    assert f'id="plan-{plan.id}"' in mine
    plan_text = text_of(mine, f"plan-{plan.id}")
    assert "Payment plan: Interview coaching" in plan_text
    assert plan_text.count("$50.00") >= 4 and plan_text.count("Scheduled") == 3

    # A paid deposit is not paid again: the pay page leads to the schedule.
    again = plan_client.get(f"/contracts/{contract_id}/pay")
    assert again.status_code == 302 and again.headers["Location"].endswith(
        f"/contracts/{contract_id}/payments#plan")


def test_sessions_unlock_with_the_deposit(db, plan_client, on_plan):
    contract_id = on_plan[0]
    contract = contract_of(db, contract_id)
    assert contract.sessions_unlocked == 1  # 25 % of 4 sessions
    detail = page(plan_client, f"/contracts/{contract_id}")
    assert text_of(detail, "plan-paid") == "$50.00 of $200.00 paid"
    assert text_of(detail, "plan-sessions") == "1 of 4 sessions unlocked"
    assert f'href="/contracts/{contract_id}/payments#plan"' in detail
    assert text_of(detail, "remaining").startswith(
        "1 of 4 left to book · 3 locked until the next instalment")
    assert "The other 3 unlock as the instalments are paid." in text_of(detail,
                                                                        "sessions-locked")

    # The coach sees what arrived, without the student's link to the schedule.
    coach_view = page(log_in_as(plan_client, on_plan[2]), f"/contracts/{contract_id}")
    assert text_of(coach_view, "plan-sessions") == "1 of 4 sessions unlocked"
    assert 'id="plan-link"' not in coach_view


def test_the_card_saved_at_the_deposit_is_listed_and_cannot_be_removed(db, plan_client,
                                                                      on_plan):
    contract_id = on_plan[0]
    plan = plan_of(db, contract_id)
    html = page(plan_client, "/payment-methods")
    [row] = re.findall(r'<li[^>]*data-card="(pm_[^"]+)"', html)
    card_text = text_of(html, "cards")
    assert "Visa •••• 4242" in card_text and "expires 12/2034" in card_text
    assert "Charged for “Interview coaching”" in card_text
    assert f'<option value="{row}" selected>' in html  # the plan's card, chosen in its form
    # Found once through the deposit's payment at Stripe, then remembered on the plan.
    assert plan_of(db, contract_id).payment_method_id == row

    refused = plan_client.submit(f"/payment-methods/{row}/remove", follow_redirects=True)
    assert "Visa •••• 4242 pays your plan for “Interview coaching”" in words(
        refused.get_data(as_text=True))
    assert "Visa •••• 4242" in text_of(page(plan_client, "/payment-methods"), "cards")
    assert plan_of(db, contract_id).payment_method_id == plan.payment_method_id


def test_a_new_card_through_setup_mode_becomes_the_plans_card(db, plan_client, sandbox,
                                                               on_plan):
    contract_id = on_plan[0]
    first = re.findall(r'data-card="(pm_[^"]+)"', page(plan_client, "/payment-methods"))
    assert len(first) == 1

    setup = session_id_of(plan_client.submit("/payment-methods/add"))
    assert sandbox.pay(setup, card_number=MASTERCARD).status_code == 200
    back = plan_client.get(f"/payment-methods?session_id={setup}")
    assert back.status_code == 303 and back.headers["Location"].endswith("/payment-methods")
    html = page(plan_client, "/payment-methods")
    assert ("Mastercard •••• 4444 is saved. Your plan for “Interview coaching” now charges it."
            in words(html))
    cards = re.findall(r'data-card="(pm_[^"]+)"', html)
    [new] = [c for c in cards if c not in first]
    assert plan_of(db, contract_id).payment_method_id == new
    assert "Charged for" in text_of(html, "cards")

    # The deposit's card no longer pays anything: it can go.
    removed = plan_client.submit(f"/payment-methods/{first[0]}/remove", follow_redirects=True)
    assert "Visa •••• 4242 was removed." in words(removed.get_data(as_text=True))
    assert re.findall(r'data-card="(pm_[^"]+)"', page(plan_client, "/payment-methods")) == [new]

    # Choosing the card by the plan's form goes through `use_card` (here: the same one).
    chosen = plan_client.submit(f"/payment-methods/plans/{plan_of(db, contract_id).id}",
                                {"payment_method": new}, follow_redirects=True)
    assert "now charges this card" in words(chosen.get_data(as_text=True))
    foreign = plan_client.submit(f"/payment-methods/plans/{plan_of(db, contract_id).id}",
                                 {"payment_method": "pm_not_mine"}, follow_redirects=True)
    assert "That card is not one of yours." in words(foreign.get_data(as_text=True))
    assert plan_of(db, contract_id).payment_method_id == new


def test_an_instalment_the_bank_wants_confirmed_is_paid_through_checkout(db, plan_client,
                                                                         sandbox, on_plan):
    from payments.models import Instalment, InstalmentStatus, Payment

    contract_id = on_plan[0]
    plan = plan_of(db, contract_id)
    first = db.session.scalar(select(Instalment).filter_by(plan_id=plan.id, number=1))
    url = f"/contracts/{contract_id}/instalments/{first.id}/pay"

    # Scheduled and charged on its date: shown, nothing to pay by hand.
    html = page(plan_client, url)
    assert text_of(html, "instalment-amount") == "$50.00"
    assert text_of(html, "instalment-due") == first.due_on.strftime("%d %b %Y")
    assert "charged to your saved card on" in text_of(html, "instalment-why")
    assert 'id="pay-instalment-form"' not in html
    early = plan_client.submit(url, follow_redirects=True)
    assert "nothing to pay by hand now" in words(early.get_data(as_text=True))
    assert count(db, Payment, instalment_id=first.id) == 0

    # The bank asked for authentication (as `plans` records it): the student pays it.
    first.needs_authentication = True
    db.session.commit()
    history = page(plan_client, f"/contracts/{contract_id}/payments")
    assert "Needs your confirmation" in text_of(history, "plan-schedule")
    assert f'href="{url}"' in history
    html = page(plan_client, url)
    assert "Your bank asked you to confirm this payment" in text_of(html, "instalment-why")
    session_id = session_id_of(plan_client.submit(url))
    assert sandbox.pay(session_id).status_code == 200
    plan_client.get(f"/contracts/{contract_id}/payment-success?session_id={session_id}")
    db.session.expire_all()
    assert db.session.get(Instalment, first.id).status is InstalmentStatus.PAID
    contract = contract_of(db, contract_id)
    assert (contract.amount_paid, contract.sessions_unlocked) == (10000, 2)
    assert contract.payment_status.value == "partially_paid"


def test_only_the_student_reaches_an_instalment_and_the_cards_page(db, plan_client, sandbox,
                                                                   on_plan, make_user):
    from payments.models import Instalment

    contract_id, _, coach = on_plan
    plan = plan_of(db, contract_id)
    first = db.session.scalar(select(Instalment).filter_by(plan_id=plan.id, number=1))
    url = f"/contracts/{contract_id}/instalments/{first.id}/pay"
    assert plan_client.get(f"/contracts/{contract_id}/instalments/999999/pay").status_code == 404

    stranger = log_in_as(plan_client, make_user("student", name="Other Student"))
    assert stranger.get(url).status_code == 404
    assert stranger.submit(url).status_code == 404
    # Another student's plan does not exist for them.
    refused = stranger.submit(f"/payment-methods/plans/{plan.id}", {"payment_method": "pm_x"})
    assert refused.status_code == 404
    assert plan_of(db, contract_id).payment_method_id is None
    assert stranger.get("/payment-methods").status_code == 200  # their own, empty
    assert 'id="no-cards"' in page(stranger, "/payment-methods")

    coach_client = log_in_as(stranger, coach)
    assert coach_client.get(url).status_code == 404
    assert coach_client.get("/payment-methods").status_code == 404
    assert coach_client.submit("/payment-methods/add").status_code == 404
