"""The layout sweep: every main page of each role, on a 390 px phone and a 1280 px laptop,
with 100-character names, 120-character titles (one a single unbroken word) and a long
e-mail address, never scrolls sideways and has no serious or critical axe-core violation.

Tables marked cp-stack turn into one card per row on a phone, the navigation collapses
behind its toggler, a long name is cut with an ellipsis (the full name in its title) and
a long word wraps instead of widening its box. One browser context per role: each logs
in once and sees its pages at both widths.
"""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from tests.browser.main_pages import (
    ADMIN_PAGES,
    COACH_PAGES,
    LAPTOP,
    LOGGED_OUT_PAGES,
    LONG_COACH,
    LONG_EMAIL,
    LONG_STUDENT,
    LONG_TITLE,
    LONG_WORDS_TITLE,
    PHONE,
    STUDENT_PAGES,
    UNBROKEN_TITLE,
)
from tests.conftest import PASSWORD
from tests.support import (
    axe_violations,
    describe_violations,
    log_in_anywhere,
    new_page,
    page_overflow,
    serve_in_thread,
    shot_top,
)

pytestmark = pytest.mark.browser

STRIPE_RECEIPT = "https://pay.stripe.com/receipts/acct_1/ch_long"


@pytest.fixture
def long_data(app, runner, db, make_user, make_proposal) -> dict[str, int]:
    """The demo data, plus a student and a coach with 100-character names (hers with a
    110-character e-mail address) and, between them, a paid contract whose title is one
    120-character word (with its receipt, invoice and Stripe receipt), a contract to pay
    with a long title and a proposal of long words waiting for her answer."""
    from accounts.models import User
    from contracts.services import accept_proposal
    from payments.manual import record_manual_payment
    from payments.models import Invoice, ManualMethod

    assert len(LONG_STUDENT) == 100 and len(LONG_COACH) == 100
    assert len(UNBROKEN_TITLE) == 120 and len(LONG_WORDS_TITLE) == 120
    assert runner.invoke(args=["demo-data"]).exit_code == 0
    student = make_user("student", email=LONG_EMAIL, name=LONG_STUDENT)
    coach = make_user("coach", email="bartholomew@example.com", name=LONG_COACH)
    demo = {
        who: db.session.scalar(select(User).filter_by(email=f"{who}@coachpact.test"))
        for who in ("maya", "ana", "admin")
    }
    paid = make_proposal(coach, student, title=UNBROKEN_TITLE)
    to_pay = make_proposal(coach, student, title=LONG_TITLE)
    from_maya = make_proposal(demo["maya"], student)
    waiting = make_proposal(coach, student, title=LONG_WORDS_TITLE)
    make_proposal(coach, demo["ana"], title=UNBROKEN_TITLE)  # waits in Ana's list
    student = db.session.merge(student)
    contract = accept_proposal(paid, student)
    accept_proposal(to_pay, student)
    accept_proposal(from_maya, student)
    db.session.commit()
    with app.test_request_context():  # the parties' notifications link to the contract
        payment = record_manual_payment(
            contract.id, demo["admin"], method=ManualMethod.BANK_TRANSFER,
            reference="WIRE-" + "7" * 40, received_on=date.today(), note="",
        )
        # A third document on the row, as a card payment has.
        payment.receipt_url = STRIPE_RECEIPT
        db.session.commit()
    invoice = db.session.scalar(select(Invoice.id).filter_by(payment_id=payment.id))
    assert invoice is not None
    # His public page, with offers of long titles and descriptions.
    from accounts.services import update_public_page
    from offers.services import create_offer

    long_coach = db.session.merge(coach)
    update_public_page(long_coach, slug="bartholomew", bio=LONG_WORDS_TITLE * 4)
    for title in (UNBROKEN_TITLE, LONG_WORDS_TITLE):
        create_offer(long_coach, title=title, description=UNBROKEN_TITLE, session_count=12,
                     minutes_per_session=90, price_per_session=123456, currency="usd",
                     plan_deposit_percent=10, plan_max_instalments=12, plan_minimum_total=None)
    membership = _long_membership(db, long_coach, student)
    db.session.commit()
    return {"contract": contract.id, "payment": payment.id, "invoice": invoice,
            "proposal": waiting, "membership": membership.id,
            "membership_offer": membership.offer_id}


def _long_membership(db, coach, student):
    """A membership offer of a long title, as published (its Stripe ids written as Stripe
    would have given them), and the student's active membership with a paid period."""
    from datetime import UTC, datetime, timedelta

    from offers.models import (
        CreditGrant,
        Membership,
        MembershipOffer,
        MembershipPeriod,
        MembershipStatus,
    )

    offer = MembershipOffer(
        coach_id=coach.id, title=UNBROKEN_TITLE, description=LONG_WORDS_TITLE,
        sessions_per_period=12, minutes_per_session=90, price_per_period=123456,
        currency="usd", period=MembershipPeriod.MONTH, stripe_product_id="prod_sweep",
        stripe_price_id="price_sweep")
    db.session.add(offer)
    db.session.flush()
    start = datetime.now(UTC) - timedelta(days=3)
    membership = Membership(
        student_id=student.id, coach_id=coach.id, offer_id=offer.id, title=UNBROKEN_TITLE,
        sessions_per_period=12, minutes_per_session=90, price_per_period=123456,
        currency="usd", period=MembershipPeriod.MONTH, status=MembershipStatus.ACTIVE,
        stripe_subscription_id="sub_sweep", stripe_price_id="price_sweep",
        current_period_start=start, current_period_end=start + timedelta(days=30),
        cancel_at_period_end=True)
    db.session.add(membership)
    db.session.flush()
    db.session.add(CreditGrant(
        membership_id=membership.id, stripe_invoice_id="in_sweep", sessions=12,
        period_start=start, period_end=start + timedelta(days=30), amount_paid=123456,
        currency="usd"))
    return membership


@pytest.fixture
def live_url(app, long_data):
    with serve_in_thread(app) as url:
        yield url


def sweep(page, url: str, paths: list[str], shots: dict[str, str] | None = None) -> list[str]:
    """Visit each path on the phone, then on the laptop; return the pages that scroll
    sideways (with the culprits) or have serious or critical axe-core violations."""
    problems = []
    for viewport in (PHONE, LAPTOP):
        page.set_viewport_size(viewport)
        width = viewport["width"]
        for path in paths:
            response = page.goto(f"{url}{path}")
            if response is None or not response.ok:
                problems.append(f"{path}: answered {response and response.status}")
                continue
            if wide := page_overflow(page):
                problems.append(f"{path} at {width} px: {wide}")
            if violations := axe_violations(page):
                problems.append(describe_violations(f"{path} at {width} px", violations))
            if shots and path in shots:
                shot_top(page, f"{shots[path]}-{width}")
    return problems


def test_logged_out_pages(browser, live_url):
    with new_page(browser, PHONE) as page:
        problems = sweep(page, live_url, LOGGED_OUT_PAGES, {"/": "sweep-home"})
        # The home page's two buttons stand apart, side by side or one above the other.
        page.set_viewport_size(PHONE)
        page.goto(live_url)
        first, second = (
            page.locator(".cp-hero").get_by_role("link", name=name).bounding_box()
            for name in ("Create an account", "Log in")
        )
        apart = max(second["x"] - (first["x"] + first["width"]),
                    second["y"] - (first["y"] + first["height"]))
        assert apart >= 8, f"the home page's buttons are {apart} px apart"
        page.get_by_role("button", name="Show or hide the menu").click()
        assert page.get_by_role("link", name="Sign up").is_visible()
    assert not problems, "\n" + "\n".join(problems)


def test_student_pages(browser, live_url, long_data):
    contract = f"/contracts/{long_data['contract']}"
    pages = [
        *STUDENT_PAGES,
        contract,
        f"{contract}/payments",
        f"/payments/{long_data['payment']}/receipt",
        f"/invoices/{long_data['invoice']}",
        f"/contracts/proposals/{long_data['proposal']}",
        f"/memberships/{long_data['membership']}",
    ]
    with new_page(browser, PHONE) as page:
        log_in_anywhere(page, live_url, LONG_EMAIL, PASSWORD)
        problems = sweep(page, live_url, pages, {
            contract: "sweep-student-contract", "/payments": "sweep-student-payments",
            "/contracts/": "sweep-student-contracts", "/memberships/": "sweep-student-memberships",
            f"/memberships/{long_data['membership']}": "sweep-student-membership",
        })

        # A contract with nothing to do shows no empty "Actions" label on the phone.
        page.set_viewport_size(PHONE)
        page.goto(f"{live_url}/contracts/")
        labels = page.locator("#contracts td[data-label='Actions']")
        for i in range(labels.count()):
            cell = labels.nth(i)
            assert not cell.is_visible() or cell.inner_text().strip(), "an empty Actions label"
        assert page.locator("#contracts").get_by_role("link", name="Pay").first.is_visible()

        # The collapsed menu opens; the name is cut with an ellipsis, whole in its title.
        page.get_by_role("button", name="Show or hide the menu").click()
        page.locator("#nav.show:not(.collapsing)").wait_for()  # opened, animation over
        name = page.locator(".cp-user-name")
        assert name.is_visible()
        assert name.get_attribute("title") == LONG_STUDENT
        assert name.evaluate("el => el.scrollWidth > el.clientWidth"), "the name is not cut"
        assert page.get_by_role("link", name="Payments").is_visible()
        if wide := page_overflow(page):
            problems.append(f"/contracts/ with the menu open: {wide}")
        shot_top(page, "sweep-student-menu-open", 900)

        # The payment's receipt, invoice and Stripe receipt sit in one menu, which the
        # keyboard opens; the table needs no sideways scroll on the laptop.
        page.set_viewport_size(LAPTOP)
        page.goto(f"{live_url}/payments")
        table = page.locator("#my-payments")
        assert table.evaluate("el => el.parentElement.scrollWidth <= el.parentElement.clientWidth")
        row = table.locator(f"tr[data-payment='{long_data['payment']}']")
        menu = row.locator("summary")
        assert menu.inner_text().startswith("Documents")
        receipt = row.get_by_role("link", name="Receipt", exact=False).first
        assert not receipt.is_visible()
        menu.focus()
        page.keyboard.press("Enter")
        assert receipt.is_visible()
        stripe = row.get_by_role("link", name="Stripe receipt")
        assert stripe.is_visible() and stripe.get_attribute("href") == STRIPE_RECEIPT
        assert row.locator(".cp-invoice").is_visible()
        shot_top(page, "sweep-student-documents-open", 900)
        page.keyboard.press("Escape")
        assert not receipt.is_visible()
        assert menu.evaluate("el => el === document.activeElement")
    assert not problems, "\n" + "\n".join(problems)


def test_coach_pages(browser, live_url, long_data):
    contract = f"/contracts/{long_data['contract']}"
    with new_page(browser, PHONE) as page:
        log_in_anywhere(page, live_url, "bartholomew@example.com", PASSWORD)
        problems = sweep(
            page, live_url,
            [*COACH_PAGES, contract, f"/contracts/proposals/{long_data['proposal']}",
             "/c/bartholomew", f"/memberships/{long_data['membership']}",
             f"/c/bartholomew/memberships/{long_data['membership_offer']}/join"],
            {"/contracts/": "sweep-coach-contracts", contract: "sweep-coach-contract",
             "/offers/": "sweep-coach-offers", "/c/bartholomew": "sweep-coach-public-page",
             "/memberships/": "sweep-coach-memberships",
             "/offers/memberships/new": "sweep-coach-membership-form"},
        )
    assert not problems, "\n" + "\n".join(problems)


def test_admin_pages(browser, live_url, long_data):
    from demo import DEMO_PASSWORD

    pages = [
        *ADMIN_PAGES,
        f"/admin/contracts/{long_data['contract']}",
        f"/admin/payments/{long_data['payment']}",
        f"/admin/memberships/{long_data['membership']}",
        "/admin/users?q=maria",
    ]
    with new_page(browser, PHONE) as page:
        log_in_anywhere(page, live_url, "admin@coachpact.test", DEMO_PASSWORD)
        problems = sweep(page, live_url, pages, {
            "/admin/users": "sweep-admin-users",
            "/admin/payments/list": "sweep-admin-payments",
            f"/admin/payments/{long_data['payment']}": "sweep-admin-payment",
            f"/admin/contracts/{long_data['contract']}": "sweep-admin-contract",
            "/admin/memberships": "sweep-admin-memberships",
            f"/admin/memberships/{long_data['membership']}": "sweep-admin-membership",
        })
        # On the phone a page of 50 payments is a compact list, and the console's tabs
        # scroll inside their own strip.
        page.set_viewport_size(PHONE)
        page.goto(f"{live_url}/admin/payments/list")
        assert page.locator("#payments tbody tr").count() == 50
        height = page.evaluate("document.documentElement.scrollHeight")
        assert height < 5000, f"50 payments take {height} px on a phone"
        tabs = page.locator("#admin-nav")
        assert tabs.evaluate("el => el.scrollWidth > el.clientWidth")
        assert tabs.evaluate("el => getComputedStyle(el).overflowX") == "auto"
        # On the laptop the payments table needs no sideways scroll of its own, and the
        # tabs fit one row, with room to spare.
        page.set_viewport_size(LAPTOP)
        table = page.locator("#payments")
        assert table.evaluate("el => el.parentElement.scrollWidth <= el.parentElement.clientWidth")
        page.goto(f"{live_url}/admin/users")
        tops = tabs.locator(":scope > li").evaluate_all(
            "items => items.map(item => Math.round(item.getBoundingClientRect().top))"
        )
        assert len(set(tops)) == 1, f"the admin tabs wrap: {tops}"
        spare = tabs.evaluate("el => el.getBoundingClientRect().right"
                              " - el.lastElementChild.getBoundingClientRect().right")
        assert spare >= 200, f"{spare} px left beside the admin tabs"
        # The less-used sections open from "More"; a click elsewhere closes it.
        plans = tabs.get_by_role("link", name="Plans")
        assert not plans.is_visible()
        tabs.locator("summary").click()
        assert plans.is_visible()
        shot_top(page, "sweep-admin-more-open", 500)
        page.locator("h1").click()
        assert not plans.is_visible()
        tabs.locator("summary").click()
        plans.click()
        page.wait_for_url("**/admin/plans")
        assert tabs.locator("summary").inner_text().startswith("Plans")
    assert not problems, "\n" + "\n".join(problems)
