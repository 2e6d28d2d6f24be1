"""A running membership through the sandbox and the real webhook path: renewals Stripe could
not collect (declined, 3-D Secure, retries run out), the billing portal, cancelling at the
period's end, a coach's pause, and moving to another offer with proration."""

from __future__ import annotations

import json
import re
from datetime import datetime
from html import unescape

import pytest
import requests
from sqlalchemy import select

from tests.conftest import login
from tests.payments.conftest import deliver
from tests.payments.test_memberships import grants, join, membership_of, move_clock_to
from tests.support import wait_for


def joined(client, db, sandbox, offer_id: int, student):
    """The student joins with 4242; the active membership with its first period's credits."""
    login(client, student)
    join(client, db, sandbox, offer_id, student)
    return wait_for(lambda: (m := membership_of(db, student.id)) is not None
                    and m.status.value == "active" and grants(db, m.id) and m,
                    what="the membership to be active with its credits")


def next_charge(sandbox, student, outcome: str) -> None:
    """What the student's card does on the next off-session charge (the renewal)."""
    from payments.checkout import customer_of

    told = sandbox.tool(f"customers/{customer_of(student)}/next", outcome=outcome)
    assert told.status_code == 200, told.text


def renewal_unpaid(client, db, sandbox, offer_id: int, student, outcome: str = "decline"):
    """A member whose first renewal the card refuses (`outcome`): past due, the invoice
    recorded."""
    membership = joined(client, db, sandbox, offer_id, student)
    next_charge(sandbox, student, outcome)
    move_clock_to(sandbox, membership.current_period_end.timestamp() + 60)
    return wait_for(lambda: (m := membership_of(db, student.id)).status.value == "past_due"
                    and m.unpaid_invoice_id and m, what="the membership to be past due")


def retried(db, sandbox, student, membership):
    """Stripe's next attempt at the unpaid invoice, declined again: the membership after."""
    attempt = membership.unpaid_attempt
    move_clock_to(sandbox, membership.next_payment_attempt.timestamp() + 60)
    return wait_for(lambda: (m := membership_of(db, student.id)).unpaid_attempt == attempt + 1
                    and m, what="Stripe's retry")


def told(db, user_id: int) -> list[str]:
    from notifications.models import Notification

    db.session.expire_all()
    return [n.message for n in db.session.scalars(
        select(Notification).where(Notification.user_id == user_id).order_by(Notification.id))]


def mailed(db, email: str) -> list[str]:
    """The subjects of the mail queued for `email`."""
    return list(mails(db, email))


def mails(db, email: str) -> dict[str, str]:
    """The mail queued for `email`: subject → body."""
    from notifications.models import OutboxMail

    db.session.expire_all()
    return {mail.subject: mail.body for mail in db.session.scalars(
        select(OutboxMail).where(OutboxMail.recipient == email).order_by(OutboxMail.id))}


def last_link(db, user_id: int) -> str:
    from notifications.models import Notification

    return db.session.scalars(select(Notification.link).where(
        Notification.user_id == user_id).order_by(Notification.id.desc())).first()


def audited(db, action: str) -> list:
    from audit.models import AuditEntry

    db.session.expire_all()
    return list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def page_of(client, membership_id: int) -> str:
    return unescape(client.get(f"/memberships/{membership_id}").get_data(as_text=True))


def confirm(client, url: str) -> tuple[str, object]:
    """Open a confirmation page and press its button: the page's words and the answer."""
    page = client.get(url)
    assert page.status_code == 200, page.get_data(as_text=True)[:400]
    html = unescape(page.get_data(as_text=True))
    form = re.search(r'<form method="post" action="([^"]+)"[^>]*id="confirm-change-form".*?</form>',
                     html, re.S)
    assert form, html[:2000]
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">',
                             form.group(0)))
    fields.pop("csrf_token", None)
    return html, client.submit(form.group(1), fields)


# --- renewals Stripe could not collect ------------------------------------------------------


def test_a_declined_renewal_is_past_due_and_a_new_card_in_the_portal_pays_it(
        client, db, sandbox, membership_offer, member, coach, stripe_client):
    membership = renewal_unpaid(client, db, sandbox, membership_offer, member)
    invoice = stripe_client.v1.invoices.retrieve(membership.unpaid_invoice_id)
    assert (invoice.status, invoice.attempt_count, invoice.billing_reason) == (
        "open", 1, "subscription_cycle")
    assert membership.unpaid_invoice_url == invoice.hosted_invoice_url
    assert membership.unpaid_invoice_url.startswith(f"{sandbox.url}/invoices/")
    assert int(membership.next_payment_attempt.timestamp()) == invoice.next_payment_attempt
    assert membership.payment_failed_at is not None and membership.unpaid_attempt == 1

    student_words = told(db, member.id)[-1]
    assert "payment for “Monthly coaching” did not go through" in student_words
    assert "update your card under “Manage billing”" in student_words
    assert last_link(db, member.id) == invoice.hosted_invoice_url
    mail = mails(db, member.email)["Coachpact: your payment for “Monthly coaching” failed"]
    assert mail.endswith(f"\n\n{invoice.hosted_invoice_url}")
    assert told(db, coach.id)[-1].startswith("Ana Student’s $40.00 payment for “Monthly "
                                             "coaching” has not gone through yet")

    page = page_of(client, membership.id)
    banner = page[page.index('id="past-due"'):]
    banner = banner[:banner.index("</div>\n</div>")]
    assert f'href="{invoice.hosted_invoice_url}" id="pay-now">Pay now' in banner
    assert 'id="update-card">Update card' in banner and "Stripe tries again on" in banner

    # The student updates the card through the portal; Stripe pays the invoice with it.
    portal = client.submit("/memberships/billing")
    assert portal.status_code == 303 and portal.headers["Location"].startswith(
        f"{sandbox.url}/billing_portal/")
    saved = requests.post(portal.headers["Location"],
                          data={"action": "card", "card_number": "4242424242424242"},
                          timeout=10)
    assert saved.status_code == 200, saved.text[:400]
    paid = wait_for(lambda: (m := membership_of(db, member.id)).status.value == "active"
                    and m.unpaid_invoice_id is None and m, what="the invoice to be paid")
    assert (paid.unpaid_invoice_url, paid.next_payment_attempt, paid.payment_failed_at) == (
        None, None, None)
    assert paid.paid_invoice_id == invoice.id
    assert [g.stripe_invoice_id for g in grants(db, paid.id)][-1] == invoice.id
    assert 'id="past-due"' not in page_of(client, paid.id)


def test_retries_run_out_and_stripe_ends_the_membership(
        client, db, sandbox, membership_offer, member, coach):
    sandbox.configure(invoice_retry_days="1,2")
    membership = renewal_unpaid(client, db, sandbox, membership_offer, member)
    retry = retried(db, sandbox, member, membership)
    move_clock_to(sandbox, retry.next_payment_attempt.timestamp() + 60)
    ended = wait_for(lambda: (m := membership_of(db, member.id)).status.value == "canceled"
                     and m, what="Stripe to end the membership")
    wait_for(lambda: membership_of(db, member.id).unpaid_attempt == 3, what="the last try")
    ended = membership_of(db, member.id)
    assert ended.next_payment_attempt is None and ended.unpaid_invoice_id is not None

    # Each attempt told once, then the end, once, to both.
    gone = ("The membership “Monthly coaching” of Ana Student with Maya Coach has ended: the "
            "renewal payment failed after Stripe’s last try.")
    student_words = told(db, member.id)
    assert [w for w in student_words if "did not go through" in w][-1].endswith(
        "Stripe will not try again: without payment the membership ends.")
    assert len([w for w in student_words if "did not go through" in w]) == 3
    assert student_words.count(gone) == 1 and told(db, coach.id).count(gone) == 1
    assert "Coachpact: “Monthly coaching” ended, payment failed" in mailed(db, coach.email)
    # The end delivered again tells nobody again.
    deleted = sandbox.events("customer.subscription.deleted")[-1]
    copy = json.loads(json.dumps(deleted))
    copy["id"] += "x"
    assert deliver(client, copy).status_code == 200
    assert told(db, member.id).count(gone) == 1

    page = page_of(client, ended.id)
    assert "because the renewal payment failed after Stripe’s last try" in page
    assert 'id="past-due"' not in page and 'id="changes-title"' not in page


def test_a_failure_delivered_again_or_late_is_told_once(
        client, db, sandbox, membership_offer, member, coach):
    membership = renewal_unpaid(client, db, sandbox, membership_offer, member)
    first = sandbox.events("invoice.payment_failed")[-1]
    copy = json.loads(json.dumps(first))
    copy["id"] += "-again"
    for event in (first, copy, first):
        assert deliver(client, event).status_code == 200
    failures = [w for w in told(db, member.id) if "did not go through" in w]
    assert len(failures) == 1
    assert len([w for w in told(db, coach.id) if "has not gone through" in w]) == 1

    # A retry fails: told once more; the first attempt coming late changes nothing.
    retried(db, sandbox, member, membership)
    late = json.loads(json.dumps(first))
    late["id"] += "-late"
    assert deliver(client, late).status_code == 200
    assert membership_of(db, member.id).unpaid_attempt == 2
    assert len([w for w in told(db, member.id) if "did not go through" in w]) == 2


def test_a_renewal_needing_3d_secure_asks_the_student_to_confirm_with_the_bank(
        client, db, sandbox, membership_offer, member, coach, stripe_client):
    membership = renewal_unpaid(client, db, sandbox, membership_offer, member,
                                outcome="authentication_required")
    assert membership.unpaid_reason == "payment_action_required"
    words = told(db, member.id)[-1]
    assert words.startswith("Your bank asks you to confirm the $40.00 payment for “Monthly "
                            "coaching”: confirm it with your bank on Stripe’s invoice page")
    assert last_link(db, member.id) == membership.unpaid_invoice_url
    mail = mails(db, member.email)["Coachpact: confirm your payment for “Monthly coaching”"]
    assert membership.unpaid_invoice_url in mail
    page = page_of(client, membership.id)
    assert "The bank asks you to confirm this period’s payment." in page
    assert f'href="{membership.unpaid_invoice_url}" id="pay-now"' in page

    # Paid on the hosted invoice page (on-session, 3-D Secure passes there).
    paid = requests.post(membership.unpaid_invoice_url,
                         data={"card_number": "4000002760003184"}, timeout=10)
    assert paid.status_code == 200, paid.text[:400]
    wait_for(lambda: (m := membership_of(db, member.id)).unpaid_invoice_id is None
             and m.status.value == "active", what="the invoice to be paid")


# --- the billing portal -------------------------------------------------------------------


def test_manage_billing_opens_the_portal_coming_back_to_payments(
        client, db, sandbox, membership_offer, member, make_user):
    membership = joined(client, db, sandbox, membership_offer, member)
    payments_page = client.get("/payments").get_data(as_text=True)
    assert 'id="manage-billing">Manage billing' in payments_page
    assert 'id="manage-billing">Manage billing' in page_of(client, membership.id)
    portal = client.submit("/memberships/billing")
    assert portal.status_code == 303
    page = requests.get(portal.headers["Location"], timeout=10).text
    assert 'href="http://localhost/payments"' in page and "Monthly coaching" in page

    # A student who never paid through Stripe has no button, and no portal.
    client.submit("/auth/logout")
    login(client, make_user("student", name="Never Paid"))
    assert 'id="manage-billing"' not in client.get("/payments").get_data(as_text=True)
    refused = client.submit("/memberships/billing", follow_redirects=True)
    assert "You have no billing details with Stripe yet." in refused.get_data(as_text=True)


# --- the student cancels at the period's end, and undoes it ---------------------------------


def test_cancel_at_period_end_and_keep_the_membership(
        client, db, sandbox, membership_offer, member, coach, stripe_client):
    membership = joined(client, db, sandbox, membership_offer, member)
    words, answer = confirm(client, f"/memberships/{membership.id}/cancel")
    assert "End “Monthly coaching” at the end of this period?" in words
    assert answer.status_code == 302
    sub = stripe_client.v1.subscriptions.retrieve(membership.stripe_subscription_id)
    assert sub.cancel_at_period_end is True
    ending = membership_of(db, member.id)
    assert ending.cancel_at_period_end  # mirrored at once, not waiting for the event
    [entry] = audited(db, "membership.cancel_at_period_end")
    assert entry.actor_id == member.id and entry.after["cancel_at_period_end"] is True
    page = page_of(client, membership.id)
    date = ending.current_period_end.strftime("%d %b %Y")
    assert f"Ends on {date}; you keep your sessions until then." in page
    assert "Keep my membership" in page and 'id="cancel-membership"' not in page
    assert told(db, coach.id)[-1] == (f"Ana Student leaves “Monthly coaching” on {date}, at "
                                      "the end of the period.")

    assert client.submit(f"/memberships/{membership.id}/keep").status_code == 302
    assert stripe_client.v1.subscriptions.retrieve(
        membership.stripe_subscription_id).cancel_at_period_end is False
    assert not membership_of(db, member.id).cancel_at_period_end
    assert audited(db, "membership.renewal_resumed")[0].actor_id == member.id
    assert 'id="membership-ending"' not in page_of(client, membership.id)
    # The coach cannot end the student's membership.
    client.submit("/auth/logout")
    login(client, coach)
    refused = client.submit(f"/memberships/{membership.id}/cancel", follow_redirects=True)
    assert "Only the student of this membership can do that." in refused.get_data(as_text=True)


# --- the coach pauses collection, and resumes it ----------------------------------------------


def test_the_coach_pauses_for_two_periods_and_resumes(
        client, db, sandbox, membership_offer, member, coach, stripe_client):
    from contracts.plans import add_months

    membership = joined(client, db, sandbox, membership_offer, member)
    client.submit("/auth/logout")
    login(client, coach)
    end = membership.current_period_end
    resumes = datetime.combine(add_months(end.date(), 1), end.timetz())
    words, answer = confirm(client, f"/memberships/{membership.id}/pause?periods=2")
    assert "Pause “Monthly coaching” for 2 periods?" in words
    charged = datetime.combine(add_months(end.date(), 2), end.timetz()).strftime("%d %b %Y")
    assert (f"The next 2 renewals, from {end.strftime('%d %b %Y')}, are not charged: Ana "
            f"Student pays nothing and gets no new sessions until {charged}") in words
    assert answer.status_code == 302
    sub = stripe_client.v1.subscriptions.retrieve(membership.stripe_subscription_id)
    assert (sub.pause_collection.behavior, sub.pause_collection.resumes_at) == (
        "void", int(resumes.timestamp()))
    paused = membership_of(db, member.id)
    assert paused.paused_until == resumes
    assert told(db, member.id)[-1].startswith("Maya Coach paused “Monthly coaching”")
    assert "Coachpact: “Monthly coaching” is paused" in mailed(db, member.email)
    assert audited(db, "membership.paused")[0].after["periods"] == 2
    assert f"no new sessions are given until {charged}" in page_of(client, membership.id)

    # The next two renewals are voided: nothing paid, no sessions; then Stripe resumes by
    # itself and the third renewal is charged.
    def voided() -> int:
        return len(stripe_client.v1.invoices.list(params={
            "subscription": membership.stripe_subscription_id, "status": "void"}).data)

    move_clock_to(sandbox, end.timestamp() + 60)
    wait_for(lambda: membership_of(db, member.id).current_period_start == end, what="renewal")
    assert voided() == 1 and len(grants(db, membership.id)) == 1
    move_clock_to(sandbox, resumes.timestamp() + 60)
    wait_for(lambda: (m := membership_of(db, member.id)).current_period_start == resumes
             and m.paused_until is None, what="the second renewal and the resumption")
    assert voided() == 2 and len(grants(db, membership.id)) == 1
    move_clock_to(sandbox, membership_of(db, member.id).current_period_end.timestamp() + 60)
    wait_for(lambda: len(grants(db, membership.id)) == 2, what="the charged renewal")
    assert grants(db, membership.id)[-1].period_start.strftime("%d %b %Y") == charged

    # Paused again for a period, and resumed by the coach before it ends.
    assert client.submit(f"/memberships/{membership.id}/pause", {"periods": "1"}).status_code == 302
    assert membership_of(db, member.id).paused_until is not None
    assert client.submit(f"/memberships/{membership.id}/resume").status_code == 302
    assert stripe_client.v1.subscriptions.retrieve(
        membership.stripe_subscription_id).pause_collection is None
    assert membership_of(db, member.id).paused_until is None
    assert told(db, member.id)[-1].startswith("Maya Coach resumed “Monthly coaching”")
    assert audited(db, "membership.resumed")[0].actor_id == coach.id
    assert 'id="membership-paused"' not in page_of(client, membership.id)
    # The student cannot pause it.
    client.submit("/auth/logout")
    login(client, member)
    assert client.get(f"/memberships/{membership.id}/pause?periods=1").status_code == 403
    refused = client.submit(f"/memberships/{membership.id}/pause", {"periods": "1"},
                            follow_redirects=True)
    assert "Only the coach of this membership can do that." in refused.get_data(as_text=True)


# --- moving to another offer ------------------------------------------------------------------


@pytest.mark.parametrize(("currency", "old", "new", "shown"), [
    ("usd", 4000, 6000, "$"), ("jpy", 5000, 8000, "¥")])
def test_moving_to_another_offer_invoices_the_prorated_difference(
        client, db, sandbox, coach, member, stripe_client, currency, old, new, shown):
    from contracts.money import format_money
    from offers.memberships import create_membership_offer, publish_price
    from offers.models import MembershipPeriod

    def offer(title: str, price: int, sessions: int) -> int:
        made = create_membership_offer(
            db.session.merge(coach), title=title, description="", sessions_per_period=sessions,
            minutes_per_session=45, price_per_period=price, currency=currency,
            period=MembershipPeriod.MONTH)
        db.session.commit()
        return publish_price(made.id).id

    first, second = offer("Monthly coaching", old, 4), offer("More coaching", new, 6)
    membership = joined(client, db, sandbox, first, member)
    # Halfway through the period, so both prorations are partial.
    start, end = (membership.current_period_start.timestamp(),
                  membership.current_period_end.timestamp())
    move_clock_to(sandbox, int((start + end) / 2))
    assert f'<option value="{second}">More coaching' in page_of(client, membership.id)

    words, answer = confirm(client, f"/memberships/{membership.id}/move?offer_id={second}")
    assert answer.status_code == 302
    shown_amount = re.search(r"you pay (\S+) now", words).group(1)
    assert shown_amount.startswith(shown)
    sub = stripe_client.v1.subscriptions.retrieve(membership.stripe_subscription_id)
    assert sub["items"].data[0].price.id == membership_of(db, member.id).stripe_price_id
    invoice = stripe_client.v1.invoices.retrieve(sub.latest_invoice)
    assert (invoice.billing_reason, invoice.status) == ("subscription_update", "paid")
    when = invoice.lines.data[0].period.start
    share = (end - when) / (end - start)
    expected = round(new * share) - round(old * share)
    assert abs(invoice.amount_paid - expected) <= 1
    assert shown_amount == format_money(invoice.amount_paid, currency)

    moved = membership_of(db, member.id)
    assert (moved.offer_id, moved.title, moved.sessions_per_period, moved.price_per_period) == (
        second, "More coaching", 6, new)
    [entry] = audited(db, "membership.moved")
    assert entry.actor_id == member.id and entry.before["offer_id"] == first
    assert told(db, coach.id)[-1] == ("Ana Student moved from “Monthly coaching” to "
                                      "“More coaching”.")

    # The prorated invoice adds the extra sessions to the rest of the running period: its
    # own paid contract, (6 - 4) × the time left, rounded up.
    extra = wait_for(lambda: len(found := grants(db, moved.id)) == 2 and found[1],
                     what="the move's grant")
    assert (extra.stripe_invoice_id, extra.sessions) == (invoice.id, -(-2 * (end - when)
                                                                      // (end - start)))
    from contracts.models import Contract

    db.session.expire_all()
    topped = db.session.get(Contract, extra.contract_id)
    assert (topped.total_amount, topped.session_count, topped.membership_id) == (
        invoice.amount_paid, extra.sessions, moved.id)
    assert int(topped.period_start.timestamp()) == when
    assert topped.period_end == moved.current_period_end


def test_moving_to_fewer_sessions_changes_nothing_until_the_next_period(
        client, db, sandbox, coach, member, stripe_client):
    from offers.memberships import create_membership_offer, publish_price
    from offers.models import MembershipPeriod

    def offer(title: str, price: int, sessions: int) -> int:
        made = create_membership_offer(
            db.session.merge(coach), title=title, description="", sessions_per_period=sessions,
            minutes_per_session=45, price_per_period=price, currency="usd",
            period=MembershipPeriod.MONTH)
        db.session.commit()
        return publish_price(made.id).id

    first, second = offer("Monthly coaching", 6000, 6), offer("Lighter coaching", 3000, 2)
    membership = joined(client, db, sandbox, first, member)
    words, answer = confirm(client, f"/memberships/{membership.id}/move?offer_id={second}")
    assert answer.status_code == 302
    assert "This period stays as paid, with its sessions" in words
    sub = stripe_client.v1.subscriptions.retrieve(membership.stripe_subscription_id)
    assert sub["items"].data[0].price.id == membership_of(db, member.id).stripe_price_id
    # Nothing invoiced now: the first invoice is still the latest, and one grant of 6.
    assert stripe_client.v1.invoices.retrieve(sub.latest_invoice).billing_reason == (
        "subscription_create")
    assert [g.sessions for g in grants(db, membership.id)] == [6]
    # The next period is charged and granted as the new membership.
    move_clock_to(sandbox, int(membership.current_period_end.timestamp()) + 60)
    renewed = wait_for(lambda: len(found := grants(db, membership.id)) == 2 and found[1],
                       what="the renewal at the new price")
    assert (renewed.sessions, renewed.amount_paid) == (2, 3000)
