"""A membership joined for real at the sandbox, as the console shows it: the list, its page
with the subscription, the invoice and the audit trail the webhooks wrote, and the MRR."""

from __future__ import annotations

from html import unescape

from tests.conftest import login
from tests.payments.conftest import *  # noqa: F403 (the sandbox, the live app, the people)
from tests.payments.test_memberships import grants, join, membership_of
from tests.support import wait_for


def test_a_membership_joined_at_the_sandbox_in_the_console(
        client, db, sandbox, membership_offer, member, make_user):  # noqa: F811
    login(client, member)
    join(client, db, sandbox, membership_offer, member)
    membership = wait_for(
        lambda: (m := membership_of(db, member.id)) is not None
        and m.status.value == "active" and grants(db, m.id) and m,
        what="the membership to be active with its credits")
    [grant] = grants(db, membership.id)
    client.submit("/auth/logout")
    login(client, make_user("admin"))

    listed = unescape(client.get("/admin/memberships?q=ana student").get_data(as_text=True))
    row = listed[listed.index(f'<tr id="membership-{membership.id}"'):]
    row = row[:row.index("</tr>")]
    assert 'data-status="active"' in row and 'data-credits="4"' in row
    assert "$40.00" in row and "Maya Coach" in row

    page = unescape(client.get(f"/admin/memberships/{membership.id}").get_data(as_text=True))
    assert membership.stripe_subscription_id in page and grant.stripe_invoice_id in page
    trail = page[page.index('id="membership-audit"'):]
    for action in ("membership.joining", "membership.active", "membership.credits_granted"):
        assert f'data-action="{action}"' in trail

    dashboard = unescape(client.get("/admin/payments").get_data(as_text=True))
    assert 'data-mrr="4000">$40.00<' in dashboard
