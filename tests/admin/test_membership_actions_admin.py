"""An admin's hand on a membership joined for real at the sandbox: ending it now with the
running period's prorated refund, pausing and resuming its collection, and refunding one
paid invoice on its period's contract; each confirmed first, a stale figure refused."""

from __future__ import annotations

from datetime import datetime, timedelta
from html import unescape

import pytest
from sqlalchemy import select

from tests.conftest import confirm_fields, login
from tests.payments.conftest import *  # noqa: F403 (the sandbox, the live app, the people)
from tests.payments.test_membership_changes import audited, mailed, told
from tests.payments.test_membership_periods import joined, period_contracts
from tests.payments.test_memberships import membership_of
from tests.support import wait_for


@pytest.fixture
def ada(make_user):
    return make_user("admin", name="Ada Admin")


def as_admin(client, ada, membership):
    """The membership's page, read by the admin after the member joined."""
    client.submit("/auth/logout")
    login(client, ada)
    return f"/admin/memberships/{membership.id}"


def page_of(client, url: str) -> str:
    return unescape(client.get(url).get_data(as_text=True))


def figure(page: str, label: str) -> str:
    return page.split(f'data-figure="{label}">', 1)[1].split("<", 1)[0]


def prorated(period, moment) -> int:
    """The running period's share of its price that its whole days left stand for, rounded
    down."""
    day = timedelta(days=1)
    length = round((period.period_end - period.period_start) / day)
    return period.total_amount * ((period.period_end - moment) // day) // length


def stripe_refunds(stripe_client, intent_id: str) -> list[tuple[int, str]]:
    return [(r.amount, r.currency) for r in stripe_client.v1.refunds.list(
        {"payment_intent": intent_id}).data if r.status == "succeeded"]


def test_an_admin_ends_a_membership_now_with_the_prorated_refund_confirmed(
        client, db, sandbox, membership_offer, member, coach, ada, stripe_client, clock):
    from contracts.models import Contract
    from payments.models import Payment

    membership = joined(client, db, sandbox, membership_offer, member)
    [running] = period_contracts(db, membership.id)
    moment = running.period_start + timedelta(days=9, hours=5)
    clock.freeze(moment)
    expected = prorated(running, moment)
    assert 0 < expected < running.total_amount
    money = f"${expected // 100}.{expected % 100:02d}"
    url = as_admin(client, ada, membership)
    page = page_of(client, url)
    assert f'id="end-now-refund">{money}<' in page
    assert 'id="pause-form"' in page and 'id="resume-form"' not in page

    # Without a reason nothing is asked.
    empty = unescape(client.submit(f"{url}/end-now", {"reason": " "}).get_data(as_text=True))
    assert "Say why the membership ends; both parties see it." in empty

    asked = client.submit(f"{url}/end-now", {"reason": "The coach left the platform."})
    words = unescape(asked.get_data(as_text=True))
    assert f"End “Monthly coaching” now and refund {money} to Ana Student?" in words
    assert figure(words, "Refund of the whole days left") == f"{money} (USD)"
    assert figure(words, "Why (both parties see it)") == "The coach left the platform."
    assert membership_of(db, member.id).status.value == "active"  # asked, nothing done

    ended = client.post(url + "/end-now", data=confirm_fields(asked), follow_redirects=True)
    assert ended.status_code == 200
    done = unescape(ended.get_data(as_text=True))
    assert "The membership has ended; both parties were told." in done
    assert f"Refunded {money}." in done
    gone = membership_of(db, member.id)
    assert gone.status.value == "canceled" and gone.ended
    assert 'id="no-actions"' in done and 'id="end-now-form"' not in done

    closed = db.session.get(Contract, running.id)
    assert closed.status.value == "cancelled"
    payment = db.session.scalar(select(Payment).where(Payment.contract_id == closed.id))
    assert stripe_refunds(stripe_client, payment.payment_intent_id) == [(expected, "usd")]
    assert stripe_client.v1.subscriptions.retrieve(
        gone.stripe_subscription_id).status == "canceled"
    [entry] = audited(db, "membership.cancelled_now")
    assert (entry.actor_id, entry.after["refund"]) == (ada.id, expected)
    for person in (member, coach):
        assert any("was ended now by an administrator: The coach left the platform." in m
                   for m in told(db, person.id))


def test_a_stale_confirmation_or_stripe_s_refusal_changes_nothing(
        client, db, sandbox, membership_offer, member, ada, stripe_client, clock):
    from payments.models import Payment

    membership = joined(client, db, sandbox, membership_offer, member)
    [running] = period_contracts(db, membership.id)
    clock.freeze(running.period_start + timedelta(days=3))
    url = as_admin(client, ada, membership)
    asked = client.submit(f"{url}/end-now", {"reason": "Asked by the student."})
    before = figure(unescape(asked.get_data(as_text=True)), "Refund of the whole days left")

    clock.advance(timedelta(days=2))  # the refund shrinks while the admin reads
    stale = client.post(url + "/end-now", data=confirm_fields(asked))
    assert stale.status_code == 409
    words = unescape(stale.get_data(as_text=True))
    now = figure(words, "Refund of the whole days left")
    assert now != before
    assert f"Refund of the whole days left: {before} before, {now} now" in words
    kept = membership_of(db, member.id)
    assert kept.status.value == "active" and not kept.ended
    assert stripe_client.v1.subscriptions.retrieve(
        kept.stripe_subscription_id).status == "active"
    assert audited(db, "membership.cancelled_now") == []
    payment = db.session.scalar(select(Payment).filter_by(contract_id=running.id))
    assert stripe_refunds(stripe_client, payment.payment_intent_id) == []

    # Stripe refuses a pause (a subscription it does not know): said on the page, and the
    # membership stays as it was.
    from extensions import db as database
    from offers.models import Membership

    row = database.session.get(Membership, membership.id)
    real, row.stripe_subscription_id = row.stripe_subscription_id, "sub_unknown"
    database.session.commit()
    refused = client.post(url + "/pause", data=confirm_fields(
        client.submit(f"{url}/pause", {"periods": "1"})))
    text = unescape(refused.get_data(as_text=True))
    assert refused.status_code == 200 and 'id="pause-form"' in text
    said = text[text.index('id="pause-form"'):].split("</form>", 1)[0]
    assert "The payment provider refused the request." in said
    assert membership_of(db, member.id).paused_until is None
    assert audited(db, "membership.paused") == []
    assert stripe_client.v1.subscriptions.retrieve(real).pause_collection is None


def test_an_admin_pauses_collection_for_two_periods_then_resumes_it(
        client, db, sandbox, membership_offer, member, coach, ada, stripe_client):
    from contracts.plans import add_months

    membership = joined(client, db, sandbox, membership_offer, member)
    url = as_admin(client, ada, membership)
    end = membership.current_period_end
    resumes = datetime.combine(add_months(end.date(), 1), end.timetz())
    charged = datetime.combine(add_months(end.date(), 2), end.timetz()).strftime("%d %b %Y")

    asked = client.submit(f"{url}/pause", {"periods": "2"})
    words = unescape(asked.get_data(as_text=True))
    assert "Pause “Monthly coaching” for 2 periods?" in words
    assert figure(words, "Stripe charges again on") == charged
    assert figure(words, "Renewals not charged") == (
        f"the next 2 renewals, from {end.strftime('%d %b %Y')}")
    paused_page = client.post(url + "/pause", data=confirm_fields(asked), follow_redirects=True)
    text = unescape(paused_page.get_data(as_text=True))
    assert "Collection is paused; both parties were told." in text
    assert 'id="collection-paused"' in text
    assert 'id="resume-form"' in text and 'id="pause-form"' not in text

    sub = stripe_client.v1.subscriptions.retrieve(membership.stripe_subscription_id)
    assert (sub.pause_collection.behavior, sub.pause_collection.resumes_at) == (
        "void", int(resumes.timestamp()))
    assert membership_of(db, member.id).paused_until == resumes
    [entry] = audited(db, "membership.paused")
    assert (entry.actor_id, entry.after["periods"]) == (ada.id, 2)
    assert told(db, member.id)[-1].startswith("An administrator paused “Monthly coaching”")
    assert told(db, coach.id)[-1].startswith("An administrator paused “Monthly coaching”")
    assert "Coachpact: “Monthly coaching” is paused" in mailed(db, member.email)

    asked = client.submit(f"{url}/resume")
    assert "Resume collection of “Monthly coaching”?" in unescape(asked.get_data(as_text=True))
    resumed = client.post(url + "/resume", data=confirm_fields(asked), follow_redirects=True)
    text = unescape(resumed.get_data(as_text=True))
    assert "Collection resumes at the next renewal" in text
    assert 'id="pause-form"' in text and 'id="resume-form"' not in text
    assert stripe_client.v1.subscriptions.retrieve(
        membership.stripe_subscription_id).pause_collection is None
    assert membership_of(db, member.id).paused_until is None
    [entry] = audited(db, "membership.resumed")
    assert entry.actor_id == ada.id
    assert told(db, coach.id)[-1].startswith("An administrator resumed “Monthly coaching”")

    # Resumed already: a second resume is refused on the page, nothing asked of Stripe.
    again = unescape(client.submit(f"{url}/resume").get_data(as_text=True))
    assert "Collection is not paused; there is nothing to resume." in again
    assert len(audited(db, "membership.resumed")) == 1


def test_a_paid_period_s_refund_link_refunds_part_of_its_invoice_at_stripe(
        client, db, sandbox, membership_offer, member, ada, stripe_client):
    from offers.models import CreditGrant
    from payments.models import Payment

    membership = joined(client, db, sandbox, membership_offer, member)
    [period] = period_contracts(db, membership.id)
    grant = db.session.scalar(select(CreditGrant).filter_by(membership_id=membership.id))
    payment = db.session.scalar(select(Payment).filter_by(contract_id=period.id))
    assert payment.stripe_invoice_id == grant.stripe_invoice_id and payment.payment_intent_id
    url = as_admin(client, ada, membership)
    page = page_of(client, url)
    row = page[page.index(f'id="grant-{grant.id}"'):]
    link = row.split(f'id="refund-grant-{grant.id}"', 1)[0].rsplit('href="', 1)[1].split('"')[0]
    assert link == f"/admin/contracts/{period.id}#money-back"
    assert "Refund…" in row[:row.index("</tr>")]

    contract_page = page_of(client, link.split("#")[0])
    assert 'id="refund-form"' in contract_page and 'id="contract-membership"' in contract_page
    refunded = client.submit_confirmed(f"/admin/contracts/{period.id}/refund",
                                       {"amount": "12.50", "note": "Two late starts."},
                                       follow_redirects=True)
    assert "Refunded $12.50." in unescape(refunded.get_data(as_text=True))
    assert stripe_refunds(stripe_client, payment.payment_intent_id) == [(1250, "usd")]
    wait_for(lambda: (db.session.expire_all() or True)
             and db.session.get(type(period), period.id).amount_returned == 1250,
             what="the refund in the period's standing")
    assert membership_of(db, member.id).status.value == "active"


def test_only_admins_see_or_change_a_membership_in_the_console(
        client, db, sandbox, membership_offer, member, coach):
    membership = joined(client, db, sandbox, membership_offer, member)
    url = f"/admin/memberships/{membership.id}"
    for person in (member, coach):
        client.submit("/auth/logout")
        login(client, person)
        assert client.get(url).status_code == 404
        for action in ("end-now", "pause", "resume"):
            assert client.submit(f"{url}/{action}", {"reason": "No.", "periods": "1"}
                                 ).status_code == 404
    assert membership_of(db, member.id).status.value == "active"
    assert membership_of(db, member.id).paused_until is None
