"""A membership's life in Chromium, through the sandbox's hosted pages and signed webhooks:
a student whose Stripe customer lives on a test clock joins from the coach's public page,
books the period's four sessions through the picker and is offered no fifth; the clock
moves past the period's end, Stripe renews and four new sessions can be booked; on a laptop
and on a 390 × 844 phone. Then the coach ends a membership now, refund shown first."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.conftest import PASSWORD
from tests.payments.test_membership_periods import book, free_starts, joined, period_contracts
from tests.payments.test_memberships import membership_of, move_clock_to
from tests.support import log_in, new_page, page_overflow, pay_by_card, shot, wait_for

pytestmark = pytest.mark.browser

VIEWPORTS = pytest.mark.parametrize(
    "viewport", [{"width": 1280, "height": 900}, {"width": 390, "height": 844}],
    ids=["laptop", "phone"])


def customer_on_a_test_clock(db, stripe_client, student, now: int) -> tuple[str, str]:
    """A test clock frozen at `now` and the student's Stripe customer on it, recorded as
    the student's customer the way the first payment would record it (so joining uses
    it); the clock's id and the customer's."""
    from payments.models import StripeCustomer

    test_clock = stripe_client.v1.test_helpers.test_clocks.create(
        params={"frozen_time": now, "name": f"member {student.id}"})
    customer = stripe_client.v1.customers.create(params={
        "email": student.email, "name": student.name, "test_clock": test_clock.id,
        "metadata": {"user_id": str(student.id)}})
    db.session.add(StripeCustomer(user_id=student.id, customer_id=customer.id))
    db.session.commit()
    return test_clock.id, customer.id


def open_period_id(page) -> int:
    """The contract id of the period whose "Book a session" button the page shows."""
    button = page.locator("[id^=book-]")
    assert button.count() == 1, page.locator("#sessions-title").locator("..").inner_text()
    return int(button.get_attribute("id").removeprefix("book-"))


def book_on_a_new_day(page, live_url: str, period_id: int, used_days: set[str],
                      shot_name: str | None = None) -> str:
    """From the membership page: "Book a session", a day not booked yet (a later week when
    this one has none), its first time, confirmed (the confirm step shot as `shot_name`);
    back on the membership page through the period's link to it. The day."""
    page.locator(f"#book-{period_id}").click()
    page.wait_for_url(f"{live_url}/contracts/{period_id}/schedule")
    while True:
        days = [d for d in page.locator("#days a.cp-day").evaluate_all(
            "links => links.map(link => link.dataset.day)") if d not in used_days]
        if days:
            break
        page.locator("#slots-later").click()
        page.wait_for_url(re.compile(r".*from=.*"))
    day = days[0]
    page.locator(f"#day-{day}").click()
    page.wait_for_url(re.compile(rf".*day={day}.*"))
    page.locator("#slots a.cp-slot").first.click()
    page.wait_for_url(re.compile(r".*slot=.*"))
    assert page_overflow(page) is None
    if shot_name:
        shot(page, shot_name)
    if page.locator("#confirm-late").count():  # inside the free-cancellation notice
        page.get_by_role("button", name="Book it anyway").click()
    else:
        page.get_by_role("button", name="Book session").click()
    page.wait_for_url(f"{live_url}/contracts/{period_id}#sessions")
    assert page.get_by_text("Session booked for").is_visible()
    page.locator("#from-membership a").click()
    page.wait_for_url(re.compile(rf"{live_url}/memberships/\d+$"))
    return day


@VIEWPORTS
def test_a_member_joins_books_four_is_refused_a_fifth_and_renews_on_a_test_clock(
        browser, live_url, db, sandbox, stripe_client, clock, membership_offer, member, viewport):
    width = viewport["width"]
    start = int(clock.now().timestamp())
    test_clock, customer = customer_on_a_test_clock(db, stripe_client, member, start)

    with new_page(browser, viewport) as page:
        log_in(page, live_url, member.email, PASSWORD)
        page.goto(f"{live_url}/c/maya")
        page.get_by_role("link", name="Join “Monthly coaching”").click()
        page.locator("#join-and-pay").click()
        pay_by_card(page, sandbox.url, member.email, member.name)
        page.wait_for_url(re.compile(rf"{live_url}/memberships/\d+\?joined=1"))
        membership_url = page.url.split("?")[0]
        # The first invoice's payment arrives by webhook and opens the period.
        wait_for(lambda: page.reload() and page.locator("[id^=book-]").count(),
                 what="the first period to be bookable")
        assert page.locator('[data-status="active"]').is_visible()
        first = open_period_id(page)
        assert page.locator(f"#period-{first}-left").inner_text() == "4"
        assert page_overflow(page) is None
        shot(page, f"membership-lifecycle-joined-{width}")

        used: set[str] = set()
        for left in (3, 2, 1, 0):
            used.add(book_on_a_new_day(page, live_url, first, used,
                                       shot_name=f"membership-lifecycle-picker-{width}"
                                       if left == 3 else None))
            assert page.locator(f"#period-{first}-left").inner_text() == str(left)
        # No fifth: the button is gone, the page says why, and the booking page agrees.
        assert page.locator(f"#book-{first}").count() == 0
        assert "Every session of this period is booked or used." in page.locator(
            f"#period-{first}").inner_text()
        shot(page, f"membership-lifecycle-all-booked-{width}")
        page.goto(f"{live_url}/contracts/{first}/schedule")  # the booking page's address
        assert page.locator("#remaining").inner_text() == "0 of 4"
        assert "Every session of this contract is booked or used." in page.content()
        assert page.locator("#book-form").count() == 0
        shot(page, f"membership-lifecycle-no-fifth-{width}")

        # Past the period's end on the customer's test clock (and the app's clock with it):
        # Stripe renews, the renewal's invoice.paid opens the next period.
        [subscription] = stripe_client.v1.subscriptions.list(
            {"customer": customer, "test_clock": test_clock}).data
        period_end = subscription["items"].data[0].current_period_end
        clock.advance(timedelta(seconds=period_end + 60 - start))
        advanced = stripe_client.v1.test_helpers.test_clocks.advance(
            test_clock, params={"frozen_time": period_end + 60})
        assert advanced.status == "advancing"
        page.goto(membership_url)
        wait_for(lambda: page.reload() and page.locator("[id^=book-]").count()
                 and open_period_id(page) != first, what="the renewal's period")
        # Once more, now that the renewal is in: on PostgreSQL each of the page's queries
        # reads what is committed when it runs, so the load that first showed the new
        # period may have read the paid periods just before it.
        page.reload()
        second = open_period_id(page)
        assert page.locator(f"#period-{first}").count() == 0  # spent, not rolled over
        assert page.locator(f"#period-{second}-left").inner_text() == "4"
        assert page.locator("#grants tbody tr").count() == 2
        assert page_overflow(page) is None
        shot(page, f"membership-lifecycle-renewed-{width}")
        book_on_a_new_day(page, live_url, second, set())
        assert page.locator(f"#period-{second}-left").inner_text() == "3"
        shot(page, f"membership-lifecycle-renewed-booked-{width}")

    ended, renewed = period_contracts(db, membership_of(db, member.id).id)
    assert (ended.id, renewed.id) == (first, second)
    assert renewed.period_start == ended.period_end


def test_the_coach_ends_a_membership_now_in_the_browser(
        app, page, live_url, client, db, sandbox, clock, membership_offer, member, coach,
        stripe_client):
    from contracts.models import CoachingSession
    from payments.models import Payment

    membership = joined(client, db, sandbox, membership_offer, member)
    [running] = period_contracts(db, membership.id)
    starts = [s for s in free_starts(app, running.id) if s > clock.now() + timedelta(days=8)]
    assert book(client, running.id, starts[0]).status_code == 302
    # A week into the period, on both clocks (Stripe's a minute behind, so the
    # subscription's end is not after the app's now). The refund counts whole days left.
    moment = running.period_start + timedelta(days=7)
    move_clock_to(sandbox, moment.timestamp() - 60)
    clock.freeze(moment)
    length = round((running.period_end - running.period_start) / timedelta(days=1))
    expected = running.total_amount * (length - 7) // length

    log_in(page, live_url, coach.email, PASSWORD)
    page.goto(f"{live_url}/memberships/{membership.id}")
    page.locator("#end-membership").click()
    page.wait_for_url(f"{live_url}/memberships/{membership.id}/end")
    assert page.locator("#end-refund").inner_text().startswith(f"${expected / 100:.2f} goes back")
    shot(page, "membership-end-now-confirm")
    page.locator("#end-now").click()  # no reason yet: refused, nothing changed
    assert "Say why the membership ends." in page.content()
    page.get_by_label("Reason").fill("Moving abroad.")
    page.locator("#end-now").click()
    page.wait_for_url(f"{live_url}/memberships/{membership.id}")
    assert page.get_by_text("The membership has ended; both of you have been told.").is_visible()
    assert page.locator("#membership-ended").is_visible()
    assert page.locator("#no-open-period").inner_text() == (
        "This membership has ended; no sessions can be booked.")
    assert page.locator("#end-membership").count() == 0
    shot(page, "membership-ended-coach")

    db.session.expire_all()
    booked = db.session.scalar(select(CoachingSession).where(
        CoachingSession.contract_id == running.id))
    assert booked.status.value == "cancelled" and not booked.late_cancellation
    # The refund confirmed reached Stripe, on the invoice's payment, whatever Stripe's own
    # deletion event did first.
    payment = db.session.scalar(select(Payment).where(Payment.contract_id == running.id))
    refunds = wait_for(lambda: [r.amount for r in stripe_client.v1.refunds.list(
        {"payment_intent": payment.payment_intent_id}).data], what="the refund at Stripe")
    assert refunds == [expected]
    assert db.session.get(type(running), running.id).status.value == "cancelled"

    # The student finds the session cancelled, its time given back.
    page.get_by_role("button", name="Log out").click()
    log_in(page, live_url, member.email, PASSWORD)
    page.goto(f"{live_url}/memberships/{membership.id}")
    assert page.locator("#membership-ended").is_visible()
    page.locator("#grants a").click()
    page.wait_for_url(f"{live_url}/contracts/{running.id}")
    assert "Cancelled; the slot was freed." in page.locator("#sessions").inner_text()
    shot(page, "membership-ended-period-contract")
