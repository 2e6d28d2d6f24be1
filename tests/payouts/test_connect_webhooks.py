"""Connected accounts' events: the Connect endpoint with its own secret, the platform
endpoint refusing them, reconcile listing them with Stripe-Account, and the coach's
return from onboarding reading the account from Stripe when no event came."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import select

from tests.conftest import login
from tests.payments.conftest import API_KEY, WEBHOOK_SECRET, count
from tests.payments.conftest import deliver as post_event
from tests.support import wait_for

HOLD = {"SANDBOX_HOLD_EVENTS": "1"}


@pytest.fixture
def coach(make_user):
    return make_user("coach", name="Maya Coach")


@pytest.fixture
def account_id(db, sandbox, coach) -> str:
    """The coach's connected account, made at the sandbox (not onboarded)."""
    from payouts import accounts

    return accounts.connect_account(db.session.merge(coach)).stripe_account_id


def account_row(db, stripe_id: str):
    from payouts.models import ConnectedAccount

    db.session.expire_all()
    return db.session.scalar(select(ConnectedAccount).filter_by(stripe_account_id=stripe_id))


def onboarded_event(sandbox, account: str) -> dict:
    """Complete onboarding at the sandbox (its events held); the account.updated it sent."""
    response = sandbox.tool(f"accounts/{account}/onboard")
    assert response.status_code == 200, response.text
    assert sandbox.events("account.updated") == []  # not among the platform's events
    [event] = sandbox.events("account.updated", account=account)
    assert event["account"] == account
    return event


@pytest.mark.parametrize("sandbox_knobs", [HOLD])
def test_account_updated_needs_the_connect_endpoint_and_its_secret(
    db, client, sandbox, account_id, sandbox_knobs
):
    from payments.models import WebhookEvent

    event = onboarded_event(sandbox, account_id)
    # Signed with the platform's secret, at the Connect endpoint: refused, nothing written.
    refused = post_event(client, event, connect=True, secret=WEBHOOK_SECRET)
    assert refused.status_code == 400
    # At the platform endpoint, with the platform's secret: a misconfigured endpoint.
    misrouted = post_event(client, event)
    assert misrouted.status_code == 400
    assert "connected account" in misrouted.get_json()["error"]
    assert "/webhooks/stripe/connect" in misrouted.get_json()["error"]
    assert count(db, WebhookEvent) == 0
    assert not account_row(db, account_id).ready

    assert post_event(client, event, connect=True).status_code == 200
    assert account_row(db, account_id).ready
    [row] = db.session.scalars(select(WebhookEvent)).all()
    assert (row.stripe_event_id, row.status.value, row.outcome) == (
        event["id"], "processed", "ready")


@pytest.mark.parametrize("sandbox_knobs", [HOLD])
def test_a_platform_event_is_refused_at_the_connect_endpoint(
    db, client, sandbox, account_id, sandbox_knobs
):
    from payments.models import WebhookEvent

    made = requests.post(f"{sandbox.url}/v1/customers", data={"email": "s@example.com"},
                         headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10)
    assert made.status_code == 200, made.text
    [event] = sandbox.events("customer.created")
    answer = post_event(client, event, connect=True)
    assert answer.status_code == 400
    assert "platform event" in answer.get_json()["error"]
    assert "/webhooks/stripe" in answer.get_json()["error"]
    assert count(db, WebhookEvent) == 0
    assert post_event(client, event).status_code == 200


def test_the_sandbox_delivers_account_updated_to_the_connect_endpoint(
    db, sandbox, account_id
):
    from payments.models import WebhookEvent

    assert sandbox.tool(f"accounts/{account_id}/onboard").status_code == 200
    wait_for(lambda: account_row(db, account_id).ready, 10, "the account to be ready")
    assert count(db, WebhookEvent, type="account.updated") == 1


@pytest.mark.parametrize("sandbox_knobs", [HOLD])
def test_reconcile_recovers_a_missed_account_updated(
    db, runner, sandbox, account_id, sandbox_knobs
):
    onboarded_event(sandbox, account_id)
    assert not account_row(db, account_id).ready
    result = runner.invoke(args=["payments", "reconcile", "--since", "1h"])
    assert result.exit_code == 0, result.output
    assert "1 added to the inbox, 0 already there" in result.output
    assert account_row(db, account_id).ready
    again = runner.invoke(args=["payments", "reconcile", "--since", "1h"])
    assert "0 added to the inbox, 1 already there" in again.output


@pytest.mark.parametrize("sandbox_knobs", [HOLD])
def test_back_from_onboarding_the_account_is_read_from_stripe(
    db, client, sandbox, coach, sandbox_knobs
):
    """No event arrives (held): the return page asks Stripe, and the account is ready."""
    from payments.models import WebhookEvent
    from payouts.models import ConnectedAccount

    login(client, coach)
    to_stripe = client.submit("/payouts/setup")
    assert to_stripe.status_code == 303
    link = to_stripe.headers["Location"]
    assert requests.get(link, timeout=10).status_code == 200  # Stripe's onboarding page
    done = requests.post(link, data={"action": "complete"}, timeout=10, allow_redirects=False)
    assert done.status_code == 303
    back = urlsplit(done.headers["Location"]).path
    assert back == "/payouts/setup/done"
    answer = client.get(back, follow_redirects=True)
    assert "Payouts are set up" in answer.get_data(as_text=True)
    assert count(db, WebhookEvent) == 0  # nothing came by webhook
    account = db.session.scalars(select(ConnectedAccount)).one()
    assert account.ready and account.details_submitted
