"""Balance transactions: what each movement of money records, pending → available on the
sandbox's clock, the list and its filters, balances as their sums, and the refusals a short
available balance brings."""

from __future__ import annotations

from typing import Any

import pytest
import requests
import stripe

from tests.sandbox.shape_check import assert_shape, raw
from tests.sandbox.test_connect import AMOUNT, AVAILABLE_AT_ONCE, FEE, NET, onboarded

DAY = 86400
SETTLING = 2 * DAY  # SANDBOX_AVAILABLE_AFTER_DAYS' default


def tool(sandbox, path: str, **data: Any) -> requests.Response:
    return requests.post(f"{sandbox.url}/_sandbox/{path}", json=data, timeout=10)


def advance(sandbox, seconds: int) -> None:
    response = tool(sandbox, "clock", advance_seconds=seconds)
    assert response.status_code == 200, response.text


def pay(client: stripe.StripeClient, make_session, sandbox, card: str = "4242424242424242",
        **overrides: Any) -> stripe.Charge:
    session = make_session(**overrides)
    response = sandbox.pay(session.id, card_number=card)
    assert response.status_code == 200, response.text
    pi = client.v1.payment_intents.retrieve(response.json()["payment_intent"]["id"])
    assert isinstance(pi.latest_charge, str)
    return client.v1.charges.retrieve(pi.latest_charge)


def txn(client: stripe.StripeClient, bt_id: str, account: str | None = None) -> dict[str, Any]:
    options: Any = {"stripe_account": account} if account else {}
    body = raw(client.v1.balance_transactions.retrieve(bt_id, options=options))
    assert_shape(body, "balance_transaction")
    return body


def listed(client: stripe.StripeClient, account: str | None = None,
           **params: Any) -> list[dict[str, Any]]:
    options: Any = {"stripe_account": account} if account else {}
    page = client.v1.balance_transactions.list(params=params, options=options)
    body = raw(page)
    for item in body["data"]:
        assert_shape(item, "balance_transaction")
    return body["data"]


def balance(client: stripe.StripeClient, account: str | None = None,
            currency: str = "usd") -> tuple[int, int]:
    options: Any = {"stripe_account": account} if account else {}
    body = raw(client.v1.balance.retrieve(options=options))
    assert_shape(body, "balance")
    available = {b["currency"]: b["amount"] for b in body["available"]}
    pending = {b["currency"]: b["amount"] for b in body["pending"]}
    return available.get(currency, 0), pending.get(currency, 0)


def sums(client: stripe.StripeClient, account: str | None = None,
         currency: str = "usd") -> tuple[int, int]:
    """(available, pending) summed from every balance transaction, page by page."""
    available = pending = 0
    options: Any = {"stripe_account": account} if account else {}
    for bt in client.v1.balance_transactions.list(params={"limit": 3},
                                                  options=options).auto_paging_iter():
        if bt.currency != currency:
            continue
        if bt.status == "available":
            available += bt.net
        else:
            pending += bt.net
    return available, pending


def test_a_card_charge_is_pending_until_available_on(client, make_session, sandbox):
    charge = pay(client, make_session, sandbox)
    assert isinstance(charge.balance_transaction, str)
    body = txn(client, charge.balance_transaction)
    assert (body["type"], body["reporting_category"], body["source"]) == (
        "charge", "charge", charge.id)
    assert (body["amount"], body["fee"], body["net"], body["currency"]) == (
        AMOUNT, FEE, NET, "usd")
    assert body["fee_details"] == [{"amount": FEE, "application": None, "currency": "usd",
                                    "description": "Stripe processing fees",
                                    "type": "stripe_fee"}]
    assert body["available_on"] == body["created"] + SETTLING
    assert body["status"] == "pending"
    assert balance(client) == (0, NET) == sums(client)

    advance(sandbox, SETTLING - 60)
    assert txn(client, body["id"])["status"] == "pending"
    advance(sandbox, 60)
    assert txn(client, body["id"])["status"] == "available"
    assert [bt["status"] for bt in listed(client)] == ["available"]
    assert balance(client) == (NET, 0) == sums(client)


def test_the_0077_card_is_available_at_once_and_charges_expand(client, make_session, sandbox):
    charge = pay(client, make_session, sandbox, card=AVAILABLE_AT_ONCE)
    body = txn(client, charge.balance_transaction)
    assert (body["available_on"], body["status"]) == (body["created"], "available")
    assert balance(client) == (NET, 0)

    expanded = client.v1.charges.retrieve(charge.id, params={"expand": ["balance_transaction"]})
    assert expanded.balance_transaction.id == body["id"]
    assert expanded.balance_transaction.net == NET
    pi = client.v1.payment_intents.retrieve(
        charge.payment_intent, params={"expand": ["latest_charge.balance_transaction"]})
    assert pi.latest_charge.balance_transaction.available_on == body["available_on"]


def test_zero_decimal_currencies_pay_the_percentage_only(client, make_session, sandbox):
    charge = pay(client, make_session, sandbox, line_items=[{
        "price_data": {"currency": "jpy", "unit_amount": 10000,
                       "product_data": {"name": "Coaching"}}, "quantity": 1}])
    body = txn(client, charge.balance_transaction)
    assert (body["amount"], body["fee"], body["net"]) == (10000, 290, 9710)


def test_a_bank_debit_gets_its_balance_transaction_when_it_succeeds(client, make_session,
                                                                    sandbox):
    session = make_session()
    response = sandbox.pay(session.id, bank_account="000123456789")
    assert response.json()["outcome"] == "processing"
    assert listed(client) == [] and balance(client) == (0, 0)
    settled = sandbox.post(f"/_sandbox/checkout/sessions/{session.id}/settle")
    assert settled.status_code == 200, settled.text
    pi = client.v1.payment_intents.retrieve(response.json()["payment_intent"]["id"])
    charge = client.v1.charges.retrieve(pi.latest_charge)
    body = txn(client, charge.balance_transaction)
    assert (body["type"], body["amount"], body["status"]) == ("charge", AMOUNT, "pending")
    assert balance(client) == (0, NET)


def test_refunds_and_their_failure(client, make_session, sandbox):
    charge = pay(client, make_session, sandbox, card=AVAILABLE_AT_ONCE)
    refund = client.v1.refunds.create(params={"charge": charge.id, "amount": 4000})
    body = txn(client, refund.balance_transaction)
    assert (body["type"], body["reporting_category"], body["source"]) == (
        "refund", "refund", refund.id)
    assert (body["amount"], body["fee"], body["net"], body["status"]) == (
        -4000, 0, -4000, "available")
    assert balance(client) == (NET - 4000, 0)

    pending = client.v1.refunds.create(params={"charge": charge.id, "amount": 1000,
                                               "metadata": {"sandbox_refund": "pending"}})
    assert balance(client) == (NET - 5000, 0)
    failed = tool(sandbox, f"refunds/{pending.id}/settle", outcome="failed").json()
    back = txn(client, failed["failure_balance_transaction"])
    assert (back["type"], back["reporting_category"], back["amount"], back["source"]) == (
        "refund_failure", "refund_failure", 1000, pending.id)
    assert balance(client) == (NET - 4000, 0) == sums(client)
    assert [bt["id"] for bt in listed(client, type="refund")] == [
        pending.balance_transaction, refund.balance_transaction]
    assert [bt["id"] for bt in listed(client, source=pending.id)] == [
        back["id"], pending.balance_transaction]


@pytest.mark.parametrize("outcome", ["won", "lost"])
def test_a_dispute_withdraws_the_amount_and_a_fee(client, make_session, sandbox, outcome):
    charge = pay(client, make_session, sandbox, card=AVAILABLE_AT_ONCE)
    dispute = tool(sandbox, f"charges/{charge.id}/dispute").json()
    [withdrawal] = dispute["balance_transactions"]
    assert_shape(withdrawal, "balance_transaction")
    assert (withdrawal["type"], withdrawal["reporting_category"], withdrawal["source"]) == (
        "adjustment", "dispute", dispute["id"])
    assert (withdrawal["amount"], withdrawal["fee"], withdrawal["net"]) == (
        -AMOUNT, 1500, -AMOUNT - 1500)
    assert withdrawal["fee_details"][0]["description"] == "Dispute fee"
    assert balance(client) == (NET - AMOUNT - 1500, 0)

    closed = tool(sandbox, f"disputes/{dispute['id']}/close", outcome=outcome).json()
    retrieved = raw(client.v1.disputes.retrieve(dispute["id"]))
    assert_shape(retrieved, "dispute")
    assert retrieved["balance_transactions"] == closed["balance_transactions"]
    if outcome == "won":
        reinstated = closed["balance_transactions"][1]
        assert (reinstated["type"], reinstated["reporting_category"], reinstated["amount"],
                reinstated["fee"]) == ("adjustment", "dispute_reversal", AMOUNT, 0)
        assert balance(client) == (NET - 1500, 0)
    else:
        assert len(closed["balance_transactions"]) == 1
        assert balance(client) == (NET - AMOUNT - 1500, 0)
    assert balance(client) == sums(client)


def test_transfers_reversals_and_payouts_on_both_balances(client, make_session, sandbox):
    coach = onboarded(client, sandbox)
    charge = pay(client, make_session, sandbox)
    available_on = txn(client, charge.balance_transaction)["available_on"]
    transfer = client.v1.transfers.create(params={
        "amount": 20000, "currency": "usd", "destination": coach,
        "source_transaction": charge.id})
    out = txn(client, transfer.balance_transaction)
    assert (out["type"], out["reporting_category"], out["amount"], out["source"]) == (
        "transfer", "transfer", -20000, transfer.id)
    assert out["status"] == "available"
    # The platform's balance owes the transfer now; the charge's money is still coming.
    assert balance(client) == (-20000, NET)
    [received] = listed(client, coach)
    assert (received["type"], received["reporting_category"], received["amount"],
            received["source"]) == ("payment", "transfer", 20000, transfer.destination_payment)
    assert (received["available_on"], received["status"]) == (available_on, "pending")
    assert balance(client, coach) == (0, 20000) == sums(client, coach)
    with pytest.raises(stripe.InvalidRequestError):  # another account's transaction
        client.v1.balance_transactions.retrieve(received["id"])

    # The coach's share is pending: a reversal finds nothing available to take.
    with pytest.raises(stripe.InvalidRequestError) as short:
        client.v1.transfers.reversals.create(transfer.id, params={"amount": 5000})
    assert short.value.code == "balance_insufficient"

    advance(sandbox, SETTLING)
    assert balance(client, coach) == (20000, 0)
    assert balance(client) == (NET - 20000, 0) == sums(client)
    reversal = client.v1.transfers.reversals.create(transfer.id, params={"amount": 5000})
    back = txn(client, reversal.balance_transaction)
    assert (back["type"], back["reporting_category"], back["amount"], back["source"]) == (
        "transfer_refund", "transfer_reversal", 5000, reversal.id)
    taken = listed(client, coach, type="payment_refund")
    assert [(bt["amount"], bt["reporting_category"], bt["source"]) for bt in taken] == [
        (-5000, "transfer_reversal", reversal.destination_payment_refund)]
    assert balance(client, coach) == (15000, 0)
    assert balance(client) == (NET - 15000, 0)

    payout = tool(sandbox, f"accounts/{coach}/payout").json()
    paid = txn(client, payout["balance_transaction"], coach)
    assert (paid["type"], paid["reporting_category"], paid["amount"], paid["source"]) == (
        "payout", "payout", -15000, payout["id"])
    assert balance(client, coach) == (0, 0) == sums(client, coach)
    swept = listed(client, coach, payout=payout["id"])
    assert sorted(bt["type"] for bt in swept) == ["payment", "payment_refund", "payout"]


def test_a_transfer_without_source_needs_available_platform_funds(client, make_session,
                                                                  sandbox):
    coach = onboarded(client, sandbox)
    pay(client, make_session, sandbox)  # pending: not enough
    with pytest.raises(stripe.InvalidRequestError) as short:
        client.v1.transfers.create(params={"amount": 1000, "currency": "usd",
                                           "destination": coach})
    assert short.value.code == "balance_insufficient"

    topped = tool(sandbox, "balance/top_up", amount=1000, currency="usd")
    assert topped.status_code == 200, topped.text
    assert_shape(topped.json(), "balance")
    assert balance(client) == (1000, NET)
    [topup] = listed(client, type="topup")
    assert (topup["amount"], topup["reporting_category"], topup["status"]) == (
        1000, "topup", "available")
    transfer = client.v1.transfers.create(params={"amount": 1000, "currency": "usd",
                                                  "destination": coach})
    assert balance(client) == (0, NET)
    # Without a source charge the coach's share is available at once.
    assert balance(client, coach) == (1000, 0)
    assert client.v1.transfers.reversals.create(transfer.id).amount == 1000


def test_the_balance_tool_records_adjustments(client, sandbox):
    coach = onboarded(client, sandbox)
    response = tool(sandbox, f"accounts/{coach}/balance", available=2500, pending=100)
    assert response.status_code == 200, response.text
    assert balance(client, coach) == (2500, 100) == sums(client, coach)
    tool(sandbox, f"accounts/{coach}/balance", available=0)
    assert balance(client, coach) == (0, 100) == sums(client, coach)
    kinds = listed(client, coach)
    assert {(bt["type"], bt["reporting_category"]) for bt in kinds} == {
        ("adjustment", "other_adjustment")}
    assert [bt["amount"] for bt in kinds] == [-2500, 100, 2500]


def test_the_list_pages_and_filters(client, make_session, sandbox):
    charges = [pay(client, make_session, sandbox, card=AVAILABLE_AT_ONCE) for _ in range(3)]
    tool(sandbox, "balance/top_up", amount=5000, currency="eur")
    everything = listed(client, limit=10)
    assert [bt["source"] for bt in everything[1:]] == [c.id for c in reversed(charges)]
    first = client.v1.balance_transactions.list(params={"limit": 2})
    assert [bt.id for bt in first.data] == [bt["id"] for bt in everything[:2]]
    assert first.has_more
    second = client.v1.balance_transactions.list(
        params={"limit": 2, "starting_after": first.data[-1].id})
    assert [bt.id for bt in second.data] == [bt["id"] for bt in everything[2:]]
    assert not second.has_more
    before = client.v1.balance_transactions.list(
        params={"limit": 1, "ending_before": everything[2]["id"]})
    assert [bt.id for bt in before.data] == [everything[1]["id"]]

    assert [bt["currency"] for bt in listed(client, currency="eur")] == ["eur"]
    assert len(listed(client, type="charge")) == 3
    assert listed(client, type="payout") == []
    created = everything[-1]["created"]
    assert len(listed(client, created={"gte": created})) == 4
    assert listed(client, created={"gt": everything[0]["created"]}) == []
    assert listed(client, created={"lt": created}) == []
    assert len(listed(client, created={"lte": everything[0]["created"]})) == 4
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.balance_transactions.retrieve("txn_missing")
    assert missing.value.http_status == 404
