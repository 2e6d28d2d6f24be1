"""Connect for separate charges and transfers: connected accounts configured by controller
properties, hosted onboarding through an Account Link, login links, balances, transfers
funded by a charge, reversals and payouts, driven through the official SDK and the
sandbox's tools."""

from __future__ import annotations

from typing import Any

import pytest
import requests
import stripe

from tests.sandbox.conftest import WEBHOOK_SECRET
from tests.sandbox.shape_check import assert_shape, raw, shape_errors

AMOUNT = 24000  # what make_session's session costs
FEE = 726  # Stripe's fee in the sandbox: 2.9 % + 30 cents
NET = AMOUNT - FEE  # what the charge adds to the platform's balance
AVAILABLE_AT_ONCE = "4000000000000077"  # the test card whose money skips the pending balance
CONTROLLER = {"fees": {"payer": "application"}, "losses": {"payments": "application"},
              "stripe_dashboard": {"type": "express"}, "requirement_collection": "stripe"}
DUE = ["business_profile.url", "external_account", "individual.dob.day",
       "individual.dob.month", "individual.dob.year", "individual.first_name",
       "individual.last_name", "tos_acceptance.date", "tos_acceptance.ip"]


def tool(sandbox, path: str, **data: Any) -> requests.Response:
    """A sandbox tool called as a script would: JSON in, JSON out."""
    return requests.post(f"{sandbox.url}/_sandbox/{path}", json=data, timeout=10)


def events(client: stripe.StripeClient, *prefixes: str,
           account: str | None = None) -> list[dict[str, Any]]:
    """Recorded events of the given type prefixes (all without), oldest first, shapes
    checked: the platform's, or with `account` that connected account's (the
    Stripe-Account header)."""
    options: Any = {"stripe_account": account} if account else {}
    page = raw(client.v1.events.list(params={"limit": 100}, options=options))
    found = [e for e in reversed(page["data"]) if e["type"].startswith(prefixes or ("",))]
    for event in found:
        assert_shape(event, "event")
    return found


def new_account(client: stripe.StripeClient, **overrides: Any) -> stripe.Account:
    params: Any = {
        "controller": CONTROLLER, "country": "US", "email": "coach@example.com",
        "capabilities": {"transfers": {"requested": True}},
        "metadata": {"coach_id": "7"},
    }
    params.update(overrides)
    return client.v1.accounts.create(params=params)


def onboarded(client: stripe.StripeClient, sandbox, **overrides: Any) -> str:
    account = new_account(client, **overrides)
    response = tool(sandbox, f"accounts/{account.id}/onboard")
    assert response.status_code == 200, response.text
    return account.id


def paid_charge(client: stripe.StripeClient, make_session, sandbox,
                card: str = AVAILABLE_AT_ONCE) -> str:
    """Pay a new session by card; return its charge id. By default with the test card
    whose money is available at once (these tests move money, not time)."""
    session = make_session(payment_intent_data={"transfer_group": "contract-42"})
    response = sandbox.pay(session.id, card_number=card)
    assert response.status_code == 200, response.text
    pi = client.v1.payment_intents.retrieve(response.json()["payment_intent"]["id"])
    assert isinstance(pi.latest_charge, str)
    return pi.latest_charge


def balance_of(client: stripe.StripeClient, account: str | None = None,
               currency: str = "usd") -> tuple[int, int]:
    """(available, pending) in one currency; the connected account's with `account`."""
    options: Any = {"stripe_account": account} if account else {}
    balance = raw(client.v1.balance.retrieve(options=options))
    assert_shape(balance, "balance")
    available = {b["currency"]: b["amount"] for b in balance["available"]}
    pending = {b["currency"]: b["amount"] for b in balance["pending"]}
    return available.get(currency, 0), pending.get(currency, 0)


# -- accounts ----------------------------------------------------------------------------


def test_account_with_controller_properties(client):
    account = new_account(client)
    body = raw(account)
    assert_shape(body, "account")
    assert account.id.startswith("acct_")
    assert (body["charges_enabled"], body["payouts_enabled"], body["details_submitted"]) == (
        False, False, False)
    assert body["capabilities"] == {"transfers": "inactive"}
    assert body["requirements"]["currently_due"] == DUE
    assert body["requirements"]["disabled_reason"] == "requirements.past_due"
    assert body["controller"] == {**CONTROLLER, "is_controller": True, "type": "application"}
    assert body["type"] == "express"  # the legacy type those properties stand for
    assert (body["country"], body["default_currency"], body["email"]) == (
        "US", "usd", "coach@example.com")
    assert body["metadata"] == {"coach_id": "7"}

    assert raw(client.v1.accounts.retrieve(account.id)) == body
    other = new_account(client, country="DE", email="trainer@example.com",
                        controller={"stripe_dashboard": {"type": "none"},
                                    "fees": {"payer": "application"},
                                    "losses": {"payments": "application"}})
    assert (other.default_currency, other.type) == ("eur", "none")
    listed = client.v1.accounts.list(params={"limit": 1})
    assert [a.id for a in listed.data] == [other.id] and listed.has_more
    # Stripe sends no event for a creation.
    assert events(client, "account.", account=other.id) == []

    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.accounts.retrieve("acct_missing")
    assert missing.value.http_status == 404 and missing.value.code == "resource_missing"
    with pytest.raises(stripe.InvalidRequestError) as both:
        new_account(client, type="express")
    assert both.value.param == "type"
    with pytest.raises(stripe.InvalidRequestError) as collection:
        new_account(client, controller={**CONTROLLER, "requirement_collection": "application"})
    assert collection.value.param == "controller[requirement_collection]"


def test_account_update_emits_account_updated(client):
    account = new_account(client)
    updated = client.v1.accounts.update(account.id, params={
        "email": "new@example.com", "metadata": {"coach_id": "", "plan": "pro"}})
    assert updated.email == "new@example.com"
    assert updated.metadata.to_dict() == {"plan": "pro"}
    [event] = events(client, "account.updated", account=account.id)
    assert event["account"] == account.id
    assert event["data"]["previous_attributes"] == {
        "email": "coach@example.com", "metadata": {"coach_id": "7", "plan": None}}
    client.v1.accounts.update(account.id, params={"email": "new@example.com"})
    # Nothing changed, no event.
    assert len(events(client, "account.updated", account=account.id)) == 1


# -- onboarding --------------------------------------------------------------------------


def account_link(client: stripe.StripeClient, account: str, receiver) -> stripe.AccountLink:
    return client.v1.account_links.create(params={
        "account": account, "type": "account_onboarding",
        "refresh_url": f"{receiver.url}/coach/stripe/refresh",
        "return_url": f"{receiver.url}/coach/stripe/return"})


def test_onboarding_page_enables_the_account(client, sandbox, receiver, connect_receiver):
    account = new_account(client)
    link = account_link(client, account.id, receiver)
    assert_shape(raw(link), "account_link")
    assert link.url.startswith(f"{sandbox.url}/connect/onboarding/")
    assert link.expires_at == link.created + 300

    page = requests.get(link.url, timeout=10, allow_redirects=False)
    assert page.status_code == 200
    assert "Complete onboarding" in page.text and account.id in page.text
    assert "<script" not in page.text
    done = requests.post(link.url, data={"action": "complete"}, timeout=10,
                         allow_redirects=False)
    assert done.status_code == 303
    assert done.headers["Location"] == f"{receiver.url}/coach/stripe/return"

    body = raw(client.v1.accounts.retrieve(account.id))
    assert_shape(body, "account")
    assert (body["charges_enabled"], body["payouts_enabled"], body["details_submitted"]) == (
        True, True, True)
    assert body["capabilities"] == {"transfers": "active"}
    assert body["requirements"]["currently_due"] == [] and \
        body["requirements"]["disabled_reason"] is None
    assert isinstance(body["tos_acceptance"]["date"], int)

    [event] = events(client, "account.", account=account.id)
    assert event["type"] == "account.updated" and event["account"] == account.id
    previous = event["data"]["previous_attributes"]
    assert (previous["charges_enabled"], previous["payouts_enabled"],
            previous["details_submitted"]) == (False, False, False)
    assert previous["capabilities"] == {"transfers": "inactive"}
    assert previous["requirements"]["currently_due"] == DUE
    # A connected account's event goes to the Connect endpoint, signed with its secret.
    delivered = connect_receiver.wait_for_type("account.updated")[0]
    assert delivered["id"] == event["id"] and delivered["account"] == account.id

    # An Account Link is single use: the next visit goes to refresh_url.
    again = requests.get(link.url, timeout=10, allow_redirects=False)
    assert again.status_code == 303
    assert again.headers["Location"] == f"{receiver.url}/coach/stripe/refresh"
    assert requests.get(f"{sandbox.url}/connect/onboarding/nope", timeout=10).status_code == 404


def test_onboarding_link_expires_and_can_be_left_unfinished(client, sandbox, receiver):
    account = new_account(client)
    expired = account_link(client, account.id, receiver)
    assert tool(sandbox, "clock", advance_seconds=301).status_code == 200
    gone = requests.get(expired.url, timeout=10, allow_redirects=False)
    assert gone.status_code == 303
    assert gone.headers["Location"] == f"{receiver.url}/coach/stripe/refresh"

    link = account_link(client, account.id, receiver)
    assert requests.get(link.url, timeout=10).status_code == 200
    left = requests.post(link.url, data={"action": "exit"}, timeout=10, allow_redirects=False)
    assert left.headers["Location"] == f"{receiver.url}/coach/stripe/return"
    still = client.v1.accounts.retrieve(account.id)
    assert (still.details_submitted, still.capabilities.transfers) == (False, "inactive")
    assert events(client, "account.", account=account.id) == []

    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.account_links.create(params={
            "account": "acct_missing", "type": "account_onboarding",
            "refresh_url": "https://example.com/r", "return_url": "https://example.com/b"})
    assert missing.value.http_status == 400 and missing.value.code == "resource_missing"
    with pytest.raises(stripe.InvalidRequestError) as no_url:
        client.v1.account_links.create(params={"account": account.id,
                                               "type": "account_onboarding",
                                               "return_url": "https://example.com/b"})
    assert no_url.value.param == "refresh_url"


def test_onboard_tool_and_login_link(client, make_session, sandbox):
    account = new_account(client)
    with pytest.raises(stripe.InvalidRequestError) as early:
        client.v1.accounts.login_links.create(account.id)
    assert "onboarding" in str(early.value.user_message)
    done = tool(sandbox, f"accounts/{account.id}/onboard")
    assert done.status_code == 200 and done.json()["payouts_enabled"] is True
    assert_shape(done.json(), "account")

    link = client.v1.accounts.login_links.create(account.id)
    assert_shape(raw(link), "login_link")
    assert link.url.startswith(f"{sandbox.url}/connect/express/")
    charge = paid_charge(client, make_session, sandbox)
    client.v1.transfers.create(params={"amount": 5000, "currency": "usd",
                                       "destination": account.id, "source_transaction": charge,
                                       "description": "Coaching, March"})
    page = requests.get(link.url, timeout=10)
    assert page.status_code == 200 and "<script" not in page.text
    assert "$50.00" in page.text and "Coaching, March" in page.text

    standard = new_account(client, controller={"stripe_dashboard": {"type": "full"}})
    tool(sandbox, f"accounts/{standard.id}/onboard")
    with pytest.raises(stripe.InvalidRequestError) as full:
        client.v1.accounts.login_links.create(standard.id)
    assert "Express" in str(full.value.user_message)


# -- transfers -----------------------------------------------------------------------------


def test_transfer_from_a_charge(client, make_session, sandbox, receiver):
    coach = onboarded(client, sandbox)
    charge = paid_charge(client, make_session, sandbox)
    assert balance_of(client) == (NET, 0)
    assert balance_of(client, coach) == (0, 0)

    transfer = client.v1.transfers.create(params={
        "amount": 20000, "currency": "usd", "destination": coach,
        "source_transaction": charge, "transfer_group": "contract-42",
        "metadata": {"contract_id": "42"}, "description": "Coaching payout"})
    body = raw(transfer)
    assert_shape(body, "transfer")
    assert transfer.id.startswith("tr_")
    assert (body["amount"], body["amount_reversed"], body["reversed"]) == (20000, 0, False)
    assert (body["destination"], body["source_transaction"], body["transfer_group"]) == (
        coach, charge, "contract-42")
    assert body["reversals"]["url"] == f"/v1/transfers/{transfer.id}/reversals"
    assert balance_of(client, coach) == (20000, 0)
    assert balance_of(client) == (NET - 20000, 0)

    assert raw(client.v1.transfers.retrieve(transfer.id)) == body
    expanded = client.v1.transfers.retrieve(transfer.id, params={
        "expand": ["destination", "source_transaction"]})
    assert expanded.destination.id == coach and expanded.source_transaction.id == charge
    assert [t.id for t in client.v1.transfers.list(
        params={"destination": coach}).data] == [transfer.id]
    assert [t.id for t in client.v1.transfers.list(
        params={"transfer_group": "contract-42"}).data] == [transfer.id]
    assert client.v1.transfers.list(params={"transfer_group": "other"}).data == []

    [created] = events(client, "transfer.")
    assert created["type"] == "transfer.created" and "account" not in created
    assert created["data"]["object"]["id"] == transfer.id
    assert receiver.wait_for_type("transfer.created")[0]["id"] == created["id"]

    updated = client.v1.transfers.update(transfer.id, params={"metadata": {"paid": "yes"}})
    assert updated.metadata.to_dict() == {"contract_id": "42", "paid": "yes"}
    assert events(client, "transfer.")[-1]["data"]["previous_attributes"] == {
        "metadata": {"paid": None}}


def test_transfer_cannot_exceed_what_the_charge_has_left(client, make_session, sandbox):
    coach = onboarded(client, sandbox)
    charge = paid_charge(client, make_session, sandbox)
    client.v1.refunds.create(params={"charge": charge, "amount": 4000})
    first = client.v1.transfers.create(params={"amount": 15000, "currency": "usd",
                                               "destination": coach,
                                               "source_transaction": charge})
    with pytest.raises(stripe.InvalidRequestError) as over:
        client.v1.transfers.create(params={"amount": 5001, "currency": "usd",
                                           "destination": coach, "source_transaction": charge})
    error = over.value
    assert (error.http_status, error.code, error.param) == (400, "balance_insufficient",
                                                            "amount")
    assert charge in str(error.user_message) and "$50.00" in str(error.user_message)
    assert client.v1.transfers.create(params={
        "amount": 5000, "currency": "usd", "destination": coach,
        "source_transaction": charge}).amount == 5000
    assert [t.id for t in client.v1.transfers.list().data][-1] == first.id

    with pytest.raises(stripe.InvalidRequestError) as currency:
        client.v1.transfers.create(params={"amount": 100, "currency": "eur",
                                           "destination": coach, "source_transaction": charge})
    assert currency.value.param == "currency"
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.transfers.create(params={"amount": 100, "currency": "usd",
                                           "destination": coach,
                                           "source_transaction": "ch_missing"})
    assert (unknown.value.code, unknown.value.param) == ("resource_missing",
                                                         "source_transaction")


def test_transfer_needs_an_onboarded_destination_and_platform_funds(client, make_session,
                                                                     sandbox):
    pending = new_account(client)
    coach = onboarded(client, sandbox)
    with pytest.raises(stripe.InvalidRequestError) as empty:
        client.v1.transfers.create(params={"amount": 1000, "currency": "usd",
                                           "destination": coach})
    assert empty.value.code == "balance_insufficient"
    assert "insufficient available funds" in str(empty.value.user_message)

    charge = paid_charge(client, make_session, sandbox)
    with pytest.raises(stripe.InvalidRequestError) as capability:
        client.v1.transfers.create(params={"amount": 1000, "currency": "usd",
                                           "destination": pending,
                                           "source_transaction": charge})
    error = capability.value
    assert (error.http_status, error.code, error.param) == (
        400, "insufficient_capabilities_for_transfer", "destination")
    assert str(error.user_message).startswith("Your destination account needs to have at "
                                              "least one of the following capabilities")
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.transfers.create(params={"amount": 1000, "currency": "usd",
                                           "destination": "acct_missing"})
    assert (missing.value.code, missing.value.param) == ("resource_missing", "destination")

    # Without source_transaction the platform's available balance pays.
    plain = client.v1.transfers.create(params={"amount": NET, "currency": "usd",
                                               "destination": coach})
    assert plain.source_transaction is None
    assert balance_of(client) == (0, 0)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.transfers.create(params={"amount": 1, "currency": "usd",
                                           "destination": coach})
    assert [e["type"] for e in events(client, "transfer.")] == ["transfer.created"]


def test_idempotent_transfer(client, make_session, sandbox):
    coach = onboarded(client, sandbox)
    charge = paid_charge(client, make_session, sandbox)
    params = {"amount": 7000, "currency": "usd", "destination": coach,
              "source_transaction": charge, "transfer_group": "contract-42"}
    first = client.v1.transfers.create(params=params,
                                       options={"idempotency_key": "payout-42-1"})
    again = client.v1.transfers.create(params=params,
                                       options={"idempotency_key": "payout-42-1"})
    assert again.id == first.id
    assert again.last_response.headers.get("Idempotent-Replayed") == "true"
    assert balance_of(client, coach) == (7000, 0)
    assert len(client.v1.transfers.list().data) == 1
    created = events(client, "transfer.created")
    assert len(created) == 1 and created[0]["request"]["idempotency_key"] == "payout-42-1"
    with pytest.raises(stripe.IdempotencyError):
        client.v1.transfers.create(params={**params, "amount": 7001},
                                   options={"idempotency_key": "payout-42-1"})


# -- reversals -----------------------------------------------------------------------------


def test_reversals(client, make_session, sandbox):
    coach = onboarded(client, sandbox)
    charge = paid_charge(client, make_session, sandbox)
    transfer = client.v1.transfers.create(params={"amount": 20000, "currency": "usd",
                                                  "destination": coach,
                                                  "source_transaction": charge})
    reversal = client.v1.transfers.reversals.create(transfer.id, params={
        "amount": 5000, "metadata": {"refund": "re_1"}, "refund_application_fee": True})
    body = raw(reversal)
    assert_shape(body, "transfer_reversal")
    assert reversal.id.startswith("trr_")
    assert (body["amount"], body["currency"], body["transfer"]) == (5000, "usd", transfer.id)
    assert body["metadata"] == {"refund": "re_1"}
    after = raw(client.v1.transfers.retrieve(transfer.id))
    assert_shape(after, "transfer")
    assert (after["amount_reversed"], after["reversed"]) == (5000, False)
    assert [r["id"] for r in after["reversals"]["data"]] == [reversal.id]
    assert balance_of(client, coach) == (15000, 0)
    assert balance_of(client) == (NET - 15000, 0)
    listed = client.v1.transfers.reversals.list(transfer.id)
    assert [r.id for r in listed.data] == [reversal.id]
    assert client.v1.transfers.reversals.retrieve(transfer.id, reversal.id).amount == 5000

    found = events(client, "transfer.")
    assert [e["type"] for e in found] == ["transfer.created", "transfer.reversed",
                                          "transfer.updated"]
    for event in found[1:]:
        assert event["data"]["object"]["amount_reversed"] == 5000
        previous = event["data"]["previous_attributes"]
        assert previous["amount_reversed"] == 0 and previous["reversals"]["data"] == []

    # The coach was paid out: nothing left to take back.
    emptied = tool(sandbox, f"accounts/{coach}/balance", available=0)
    assert emptied.status_code == 200, emptied.text
    assert_shape(emptied.json(), "balance")
    with pytest.raises(stripe.InvalidRequestError) as short:
        client.v1.transfers.reversals.create(transfer.id, params={"amount": 1000})
    error = short.value
    assert (error.http_status, error.code) == (400, "balance_insufficient")
    assert coach in str(error.user_message)
    assert client.v1.transfers.retrieve(transfer.id).amount_reversed == 5000
    assert len(events(client, "transfer.")) == 3

    tool(sandbox, f"accounts/{coach}/balance", available=50000)
    with pytest.raises(stripe.InvalidRequestError) as over:
        client.v1.transfers.reversals.create(transfer.id, params={"amount": 15001})
    assert over.value.param == "amount"
    rest = client.v1.transfers.reversals.create(transfer.id)  # the rest by default
    assert rest.amount == 15000
    full = client.v1.transfers.retrieve(transfer.id)
    assert (full.amount_reversed, full.reversed) == (20000, True)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.transfers.reversals.create(transfer.id)
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.transfers.reversals.create("tr_missing")
    assert missing.value.http_status == 404


# -- payouts and the Stripe-Account header ---------------------------------------------------


def test_payout_tool_pays_the_balance_out(client, make_session, sandbox, connect_receiver):
    coach = onboarded(client, sandbox)
    charge = paid_charge(client, make_session, sandbox)
    client.v1.transfers.create(params={"amount": 12000, "currency": "usd",
                                       "destination": coach, "source_transaction": charge})
    response = tool(sandbox, f"accounts/{coach}/payout")
    assert response.status_code == 200, response.text
    payout = response.json()
    assert_shape(payout, "payout")
    assert (payout["amount"], payout["currency"], payout["status"]) == (12000, "usd", "paid")
    assert payout["destination"].startswith("ba_")
    assert balance_of(client, coach) == (0, 0)

    found = events(client, "payout.", account=coach)
    assert [e["type"] for e in found] == ["payout.created", "payout.paid"]
    assert all(e["account"] == coach for e in found)
    assert found[0]["data"]["object"]["status"] == "in_transit"
    assert found[1]["data"]["previous_attributes"]["status"] == "in_transit"
    assert connect_receiver.wait_for_type("payout.paid")[0]["account"] == coach

    options: Any = {"stripe_account": coach}
    listed = client.v1.payouts.list(options=options)
    assert [p.id for p in listed.data] == [payout["id"]]
    assert client.v1.payouts.retrieve(payout["id"], options=options).status == "paid"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payouts.retrieve(payout["id"])  # not the platform's
    nothing = tool(sandbox, f"accounts/{coach}/payout")
    assert nothing.status_code == 400
    not_ready = tool(sandbox, f"accounts/{new_account(client).id}/payout")
    assert not_ready.status_code == 400


def test_stripe_account_header(client, sandbox):
    coach = new_account(client).id
    tool(sandbox, f"accounts/{coach}/balance", available=2500, pending=100, currency="usd")
    assert balance_of(client, coach) == (2500, 100)
    with pytest.raises(stripe.PermissionError) as unknown:
        client.v1.balance.retrieve(options={"stripe_account": "acct_missing"})
    # The SDK's PermissionError keeps no code of its own; the error object has it.
    assert unknown.value.http_status == 403 and unknown.value.error.code == "account_invalid"
    with pytest.raises(stripe.InvalidRequestError) as elsewhere:
        client.v1.customers.create(options={"stripe_account": coach})
    assert "Stripe-Account" in str(elsewhere.value.user_message)
    bad = tool(sandbox, f"accounts/{coach}/balance", available="lots")
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "available"


# -- Connect endpoints and connected accounts' events ---------------------------------------


def test_connected_account_events_go_only_to_connect_endpoints(
        client, sandbox, receiver, connect_receiver):
    coach = onboarded(client, sandbox)
    client.v1.customers.create(params={"email": "student@example.com"})
    [updated] = connect_receiver.wait_for_type("account.updated")
    assert updated["account"] == coach
    receiver.wait_for_type("customer.created")
    # Each receiver checks the signature with its own endpoint's secret: nothing refused,
    # and each got only its own kind.
    assert receiver.rejected == [] and connect_receiver.rejected == []
    assert "account.updated" not in receiver.types()
    assert connect_receiver.types() == ["account.updated"]
    [attempt] = connect_receiver.attempts
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(attempt["body"], attempt["signature"], WEBHOOK_SECRET)
    [delivery] = sandbox.deliveries(updated["id"])
    assert delivery["url"] == connect_receiver.endpoint
    page = requests.get(f"{sandbox.url}/_sandbox/events", timeout=10).text
    assert f"Connect endpoints: {connect_receiver.endpoint}" in page
    assert f"on <code>{coach}</code>" in page

    # A resend goes the same way.
    resent = requests.post(f"{sandbox.url}/_sandbox/events/{updated['id']}/resend",
                           headers={"Accept": "application/json"}, timeout=10)
    assert resent.json() == {"queued": 1}
    connect_receiver.wait_for_type("account.updated", count=2)
    assert "account.updated" not in receiver.types()


def test_without_connect_endpoints_a_connected_accounts_event_goes_nowhere(
        client, sandbox, receiver):
    sandbox.configure(connect_webhook_urls="")
    coach = onboarded(client, sandbox)
    [event] = events(client, "account.updated", account=coach)
    assert event["pending_webhooks"] == 0 and sandbox.deliveries(event["id"]) == []
    client.v1.customers.create(params={"email": "student@example.com"})
    receiver.wait_for_type("customer.created")
    assert "account.updated" not in receiver.types()


def test_events_are_listed_and_retrieved_by_account(client, make_session, sandbox):
    coach = onboarded(client, sandbox)
    other = onboarded(client, sandbox, email="other@example.com")
    charge = paid_charge(client, make_session, sandbox)
    client.v1.transfers.create(params={"amount": 12000, "currency": "usd",
                                       "destination": coach, "source_transaction": charge})
    assert tool(sandbox, f"accounts/{coach}/payout").status_code == 200

    platform = events(client)
    assert all("account" not in e for e in platform)
    assert {"charge.succeeded", "transfer.created"} <= {e["type"] for e in platform}
    mine = events(client, account=coach)
    assert [e["type"] for e in mine] == ["account.updated", "payout.created", "payout.paid"]
    assert all(e["account"] == coach for e in mine)
    assert [e["type"] for e in events(client, account=other)] == ["account.updated"]
    # Filters work within the account's own events.
    typed = client.v1.events.list(params={"type": "payout.*"},
                                  options={"stripe_account": coach})
    assert [e.type for e in typed.data] == ["payout.paid", "payout.created"]
    # The SDK pages on with the same header.
    paged = client.v1.events.list(params={"limit": 1}, options={"stripe_account": coach})
    assert [e.id for e in paged.auto_paging_iter()] == [e["id"] for e in reversed(mine)]

    own = client.v1.events.retrieve(mine[0]["id"], options={"stripe_account": coach})
    assert own.id == mine[0]["id"] and own.account == coach
    # Another scope's event is unknown, as Stripe answers.
    for event_id, options in ((mine[0]["id"], {}),
                              (mine[0]["id"], {"stripe_account": other}),
                              (platform[0]["id"], {"stripe_account": coach})):
        with pytest.raises(stripe.InvalidRequestError) as missing:
            client.v1.events.retrieve(event_id, options=options)
        assert missing.value.http_status == 404 and missing.value.code == "resource_missing"
    with pytest.raises(stripe.PermissionError):
        client.v1.events.list(options={"stripe_account": "acct_missing"})


def test_shape_checker_knows_connect_objects(client, sandbox):
    account = raw(new_account(client))
    assert shape_errors(account) == []
    assert shape_errors({**account, "charges_enabled": "no"})
    assert shape_errors({**account, "capabilities": {"transfers": 1}})
    assert shape_errors({**account, "surprise": 1})
    assert shape_errors({k: v for k, v in account.items() if k != "requirements"})
