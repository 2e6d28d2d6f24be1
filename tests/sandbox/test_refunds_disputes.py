"""Refund lifecycle (pending, failed, canceled) and disputes (evidence, decisions), driven
through the official SDK and the sandbox's tools."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
import stripe

from tests.sandbox.shape_check import assert_shape, raw, shape_errors

AMOUNT = 24000  # what make_session's session costs
CHARGED_BACK = "Charge {} has been charged back; cannot issue a refund."


def paid(client: stripe.StripeClient, make_session, sandbox) -> tuple[str, str]:
    """Pay a new session by card; return (payment intent id, charge id)."""
    session = make_session()
    response = sandbox.pay(session.id, card_number="4242424242424242")
    assert response.status_code == 200, response.text
    pi = client.v1.payment_intents.retrieve(response.json()["payment_intent"]["id"])
    assert isinstance(pi.latest_charge, str)
    return pi.id, pi.latest_charge


def tool(sandbox, path: str, **data: Any) -> requests.Response:
    """A sandbox tool called as a script would: JSON in, JSON out."""
    return requests.post(f"{sandbox.url}/_sandbox/{path}", json=data, timeout=10)


def events(client: stripe.StripeClient, *prefixes: str) -> list[dict[str, Any]]:
    """Recorded events of the given type prefixes, oldest first, as the sandbox sent them;
    every payload is checked against Stripe's shapes on the way."""
    page = raw(client.v1.events.list(params={"limit": 100}))
    found = [e for e in reversed(page["data"]) if e["type"].startswith(prefixes)]
    for event in found:
        assert_shape(event, "event")
    return found


def refund_events(client: stripe.StripeClient) -> list[dict[str, Any]]:
    """refund.*, charge.refunded and charge.refund.updated."""
    return events(client, "refund.", "charge.refund")


def dispute_events(client: stripe.StripeClient) -> list[dict[str, Any]]:
    return events(client, "charge.dispute.")


def charge_of(client: stripe.StripeClient, charge_id: str) -> dict[str, Any]:
    """The charge with its refunds (`expand[]=refunds`: Stripe lists them only when asked)."""
    charge = raw(client.v1.charges.retrieve(charge_id, params={"expand": ["refunds"]}))
    assert_shape(charge, "charge")
    return charge


def open_dispute(sandbox, charge_id: str, **data: Any) -> dict[str, Any]:
    response = tool(sandbox, f"charges/{charge_id}/dispute", **data)
    assert response.status_code == 200, response.text
    dispute = response.json()
    assert_shape(dispute, "dispute")
    return dispute


# -- the shape checker's allowance for failed refunds ------------------------------------


def test_conditional_refund_fields_are_typed(client, make_session, sandbox):
    _, charge = paid(client, make_session, sandbox)
    refund = raw(client.v1.refunds.create(params={"charge": charge, "amount": 100}))
    assert shape_errors(refund) == []
    failed = {**refund, "status": "failed", "failure_reason": "declined",
              "failure_balance_transaction": "txn_123"}
    assert shape_errors(failed) == []
    assert shape_errors({**failed, "failure_reason": 7})
    assert shape_errors({**refund, "failure_reasons": "declined"})
    assert shape_errors({**refund, "next_steps": None})


# -- a charge's refunds, listed only when expanded ----------------------------------------


def test_a_charge_lists_its_refunds_only_when_expanded(client, make_session, sandbox):
    pi, charge = paid(client, make_session, sandbox)
    made = [client.v1.refunds.create(params={"charge": charge, "amount": 100}).id
            for _ in range(11)]
    plain = raw(client.v1.charges.retrieve(charge))
    assert_shape(plain, "charge")
    assert "refunds" not in plain and plain["amount_refunded"] == 1100
    # Expanded: a list of the newest ten, has_more for the rest (the url pages on).
    listed = charge_of(client, charge)["refunds"]
    assert [r["id"] for r in listed["data"]] == made[::-1][:10]
    assert (listed["has_more"], listed["url"]) == (True, f"/v1/charges/{charge}/refunds")
    rest = client.raw_request("get", listed["url"], starting_after=made[1]).data
    assert ([r["id"] for r in rest["data"]], rest["has_more"]) == ([made[0]], False)
    # Through an expansion that reaches the charge, and on into each refund.
    intent = raw(client.v1.payment_intents.retrieve(
        pi, params={"expand": ["latest_charge.refunds.data.charge"]}))
    nested = intent["latest_charge"]["refunds"]
    assert [r["id"] for r in nested["data"]] == made[::-1][:10]
    assert nested["data"][0]["charge"]["id"] == charge
    assert "refunds" not in nested["data"][0]["charge"]  # not asked for there
    # Never stored on the charge, never in an event (Stripe's events expand nothing).
    assert "refunds" not in raw(client.v1.charges.retrieve(charge))
    for event in events(client, "charge."):
        assert "refunds" not in event["data"]["object"]
        assert "refunds" not in event["data"].get("previous_attributes", {})
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.raw_request("get", "/v1/charges/ch_missing/refunds")
    assert missing.value.http_status == 404


# -- pending refunds -----------------------------------------------------------------------


def test_pending_refund_settles_as_succeeded(client, make_session, sandbox):
    sandbox.configure(refund_outcome="pending")
    pi, charge = paid(client, make_session, sandbox)
    refund = client.v1.refunds.create(params={"payment_intent": pi, "amount": 5000})
    body = raw(refund)
    assert_shape(body, "refund")
    assert (refund.status, refund.amount, refund.charge) == ("pending", 5000, charge)
    assert "failure_reason" not in body  # only a failed or canceled refund has one
    # Stripe counts a pending refund in the charge at once.
    before = charge_of(client, charge)
    assert (before["amount_refunded"], before["refunded"]) == (5000, False)
    assert before["refunds"]["data"][0]["status"] == "pending"

    settled = tool(sandbox, f"refunds/{refund.id}/settle", outcome="succeeded")
    assert settled.status_code == 200, settled.text
    assert_shape(settled.json(), "refund")
    assert settled.json()["status"] == "succeeded"
    fetched = client.v1.refunds.retrieve(refund.id)
    assert fetched.status == "succeeded" and raw(fetched) == settled.json()
    after = charge_of(client, charge)
    assert after["amount_refunded"] == 5000
    assert after["refunds"]["data"][0]["status"] == "succeeded"

    found = refund_events(client)
    assert [e["type"] for e in found] == ["refund.created", "charge.refunded", "refund.updated",
                                          "charge.refund.updated"]
    created, refunded, *updated = found
    assert created["data"]["object"]["status"] == "pending"
    assert refunded["data"]["object"]["amount_refunded"] == 5000
    assert "refunds" not in refunded["data"]["object"]  # never in an event
    assert refunded["data"]["previous_attributes"] == {"amount_refunded": 0}
    for event in updated:  # both carry the refund
        assert event["data"]["object"] == settled.json()
        assert event["data"]["object"]["status"] == "succeeded"
        assert event["data"]["previous_attributes"] == {"status": "pending"}
        assert event["request"] == {"id": None, "idempotency_key": None}  # not an API call


def test_pending_refund_fails_and_gives_the_amount_back(client, make_session, sandbox, receiver):
    # The knob stays "succeeded"; this refund asks to be pending through its metadata.
    assert sandbox.configure()["refund_outcome"] == "succeeded"
    _, charge = paid(client, make_session, sandbox)
    refund = client.v1.refunds.create(params={
        "charge": charge, "metadata": {"sandbox_refund": "pending", "order": "7"}})
    assert (refund.status, refund.amount) == ("pending", AMOUNT)
    assert refund.metadata.to_dict() == {"sandbox_refund": "pending", "order": "7"}
    full = charge_of(client, charge)
    assert (full["amount_refunded"], full["refunded"]) == (AMOUNT, True)

    # A form post from a script (no JSON Accept header) gets JSON too.
    failed = sandbox.post(f"/_sandbox/refunds/{refund.id}/settle", outcome="failed",
                          failure_reason="expired_or_canceled_card")
    assert failed.status_code == 200, failed.text
    body = failed.json()
    assert_shape(body, "refund")
    assert (body["status"], body["failure_reason"]) == ("failed", "expired_or_canceled_card")
    assert body["failure_balance_transaction"].startswith("txn_")
    assert body["failure_balance_transaction"] != body["balance_transaction"]
    sdk = client.v1.refunds.retrieve(refund.id)
    assert (sdk.status, sdk.failure_reason) == ("failed", "expired_or_canceled_card")
    restored = charge_of(client, charge)
    assert (restored["amount_refunded"], restored["refunded"]) == (0, False)
    assert restored["refunds"]["data"][0]["status"] == "failed"

    found = refund_events(client)
    assert [e["type"] for e in found] == ["refund.created", "charge.refunded", "refund.failed",
                                          "refund.updated", "charge.refund.updated"]
    assert found[1]["data"]["previous_attributes"] == {"amount_refunded": 0, "refunded": False}
    for event in found[2:]:
        assert event["data"]["object"]["object"] == "refund"
        assert event["data"]["object"]["status"] == "failed"
        assert event["data"]["previous_attributes"] == {
            "status": "pending", "failure_balance_transaction": None, "failure_reason": None}
    # The same events reach the webhook endpoint, signed.
    delivered = receiver.wait_for_type("refund.failed")[0]
    assert delivered["id"] == found[2]["id"]

    # The money is back on the charge, so it can be refunded again.
    again = client.v1.refunds.create(params={"charge": charge})
    assert (again.status, again.amount) == ("succeeded", AMOUNT)


def test_failure_reason_defaults_to_declined_and_is_checked(client, make_session, sandbox):
    _, charge = paid(client, make_session, sandbox)
    first, second = (client.v1.refunds.create(params={
        "charge": charge, "amount": 1000, "metadata": {"sandbox_refund": "pending"}})
        for _ in range(2))
    bad = tool(sandbox, f"refunds/{first.id}/settle", outcome="failed", failure_reason="oops")
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "failure_reason"
    mixed = tool(sandbox, f"refunds/{first.id}/settle", outcome="succeeded",
                 failure_reason="declined")
    assert mixed.status_code == 400
    no_outcome = tool(sandbox, f"refunds/{first.id}/settle")
    assert no_outcome.status_code == 400 and no_outcome.json()["error"]["param"] == "outcome"
    assert client.v1.refunds.retrieve(first.id).status == "pending"  # nothing changed

    failed = tool(sandbox, f"refunds/{first.id}/settle", outcome="failed")
    assert failed.json()["failure_reason"] == "declined"
    tool(sandbox, f"refunds/{second.id}/settle", outcome="succeeded")
    assert charge_of(client, charge)["amount_refunded"] == 1000


def test_only_a_pending_refund_can_be_settled(client, make_session, sandbox):
    _, charge = paid(client, make_session, sandbox)
    refund = client.v1.refunds.create(params={"charge": charge, "amount": 1000})
    assert refund.status == "succeeded"
    refused = tool(sandbox, f"refunds/{refund.id}/settle", outcome="failed")
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["type"] == "invalid_request_error" and "pending" in error["message"]
    assert set(error) == {"code", "doc_url", "message", "param", "type"}
    missing = tool(sandbox, "refunds/re_missing/settle", outcome="succeeded")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "resource_missing"
    assert [e["type"] for e in refund_events(client)] == ["refund.created", "charge.refunded"]


# -- requires_action and cancel ------------------------------------------------------------


def test_requires_action_refund_can_be_canceled(client, make_session, sandbox):
    sandbox.configure(refund_outcome="requires_action")
    _, charge = paid(client, make_session, sandbox)
    refund = client.v1.refunds.create(params={"charge": charge, "amount": 3000})
    assert refund.status == "requires_action"
    assert charge_of(client, charge)["amount_refunded"] == 3000
    # Waiting for the customer is not "pending": the settle tool refuses it.
    assert tool(sandbox, f"refunds/{refund.id}/settle", outcome="succeeded").status_code == 400

    canceled = client.v1.refunds.cancel(refund.id)
    body = raw(canceled)
    assert_shape(body, "refund")
    assert (canceled.status, canceled.failure_reason) == ("canceled", "merchant_request")
    assert canceled.failure_balance_transaction.startswith("txn_")
    restored = charge_of(client, charge)
    assert (restored["amount_refunded"], restored["refunded"]) == (0, False)
    assert restored["refunds"]["data"][0]["status"] == "canceled"

    found = refund_events(client)
    assert [e["type"] for e in found] == ["refund.created", "charge.refunded", "refund.updated",
                                          "charge.refund.updated"]
    for updated in found[2:]:
        assert updated["data"]["object"] == body
        assert updated["data"]["previous_attributes"] == {
            "status": "requires_action", "failure_balance_transaction": None,
            "failure_reason": None}
        assert updated["request"]["id"] == canceled.last_response.request_id

    with pytest.raises(stripe.InvalidRequestError) as again:
        client.v1.refunds.cancel(refund.id)
    assert again.value.http_status == 400
    assert "canceled" in again.value.user_message and "requires_action" in again.value.user_message


def test_cancel_is_refused_for_a_succeeded_refund(client, make_session, sandbox):
    _, charge = paid(client, make_session, sandbox)
    refund = client.v1.refunds.create(params={"charge": charge, "amount": 3000})
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.refunds.cancel(refund.id)
    assert refused.value.http_status == 400
    assert refused.value.json_body["error"]["type"] == "invalid_request_error"
    assert refused.value.user_message == (
        "This refund cannot be canceled because it has a status of `succeeded`. Only refunds "
        "with a status of `requires_action` can be canceled.")
    assert client.v1.refunds.retrieve(refund.id).status == "succeeded"
    assert charge_of(client, charge)["amount_refunded"] == 3000
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.refunds.cancel("re_missing")
    assert missing.value.http_status == 404


def test_refund_outcome_is_checked(client, make_session, sandbox):
    bad = requests.post(f"{sandbox.url}/_sandbox/config", json={"refund_outcome": "failed"},
                        timeout=10)
    assert bad.status_code == 400 and "refund_outcome" in bad.json()["error"]["message"]
    _, charge = paid(client, make_session, sandbox)
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.refunds.create(params={"charge": charge,
                                         "metadata": {"sandbox_refund": "later"}})
    assert exc.value.param == "metadata[sandbox_refund]"
    assert charge_of(client, charge)["amount_refunded"] == 0


@pytest.mark.parametrize("sandbox_config", [{"SANDBOX_REFUND_OUTCOME": "pending"}])
def test_refund_outcome_from_settings(client, make_session, sandbox):
    assert sandbox.configure()["refund_outcome"] == "pending"
    _, charge = paid(client, make_session, sandbox)
    assert client.v1.refunds.create(params={"charge": charge, "amount": 1000}).status == (
        "pending")
    forced = client.v1.refunds.create(params={"charge": charge, "amount": 1,
                                              "metadata": {"sandbox_refund": "succeeded"}})
    assert forced.status == "succeeded"


# -- listing refunds -----------------------------------------------------------------------


def test_list_refunds_with_filters_and_cursors(client, make_session, sandbox):
    pi_a, charge_a = paid(client, make_session, sandbox)
    pi_b, charge_b = paid(client, make_session, sandbox)
    a1 = client.v1.refunds.create(params={"charge": charge_a, "amount": 1000})
    b1 = client.v1.refunds.create(params={"charge": charge_b, "amount": 2000})
    a2 = client.v1.refunds.create(params={"payment_intent": pi_a, "amount": 3000})

    everything = client.v1.refunds.list()
    body = raw(everything)
    assert (body["object"], body["url"], body["has_more"]) == ("list", "/v1/refunds", False)
    assert [r["id"] for r in body["data"]] == [a2.id, b1.id, a1.id]  # newest first
    for refund in body["data"]:
        assert_shape(refund, "refund")

    assert [r.id for r in client.v1.refunds.list(params={"charge": charge_a}).data] == [
        a2.id, a1.id]
    assert [r.id for r in client.v1.refunds.list(params={"payment_intent": pi_b}).data] == [
        b1.id]
    assert client.v1.refunds.list(params={"charge": "ch_other"}).data == []
    assert client.v1.refunds.list(params={"created": {"gt": int(time.time()) + 60}}).data == []
    assert len(client.v1.refunds.list(params={"created": {"gte": a1.created}}).data) == 3

    page = client.v1.refunds.list(params={"limit": 2})
    assert [r.id for r in page.data] == [a2.id, b1.id] and page.has_more is True
    rest = client.v1.refunds.list(params={"limit": 2, "starting_after": b1.id})
    assert [r.id for r in rest.data] == [a1.id] and rest.has_more is False
    back = client.v1.refunds.list(params={"limit": 1, "ending_before": a1.id})
    assert [r.id for r in back.data] == [b1.id]
    assert [r.id for r in page.auto_paging_iter()] == [a2.id, b1.id, a1.id]
    with pytest.raises(stripe.InvalidRequestError) as bad:
        client.v1.refunds.list(params={"starting_after": "re_nope"})
    assert bad.value.param == "starting_after"
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.refunds.list(params={"status": "pending"})
    assert unknown.value.code == "parameter_unknown"


# -- refunds on disputed charges ---------------------------------------------------------


def test_refund_is_refused_on_a_charged_back_charge(client, make_session, sandbox):
    pi, charge = paid(client, make_session, sandbox)
    dispute = open_dispute(sandbox, charge)
    assert dispute["is_charge_refundable"] is False
    for params in ({"charge": charge}, {"payment_intent": pi, "amount": 100}):
        with pytest.raises(stripe.InvalidRequestError) as refused:
            client.v1.refunds.create(params=params)
        assert refused.value.http_status == 400
        assert refused.value.code == "charge_disputed"
        assert refused.value.user_message == CHARGED_BACK.format(charge)
    assert charge_of(client, charge)["amount_refunded"] == 0
    # Lost: the money went back to the cardholder through the chargeback, for good.
    tool(sandbox, f"disputes/{dispute['id']}/close", outcome="lost")
    with pytest.raises(stripe.InvalidRequestError) as lost:
        client.v1.refunds.create(params={"charge": charge})
    assert lost.value.code == "charge_disputed"
    assert client.v1.refunds.list(params={"charge": charge}).data == []


def test_refund_is_allowed_while_the_dispute_says_refundable(client, make_session, sandbox):
    _, charge = paid(client, make_session, sandbox)
    dispute = open_dispute(sandbox, charge, refundable=True)
    assert dispute["is_charge_refundable"] is True
    assert client.v1.disputes.retrieve(dispute["id"]).is_charge_refundable is True
    refund = client.v1.refunds.create(params={"charge": charge})
    assert (refund.status, refund.amount) == ("succeeded", AMOUNT)
    assert charge_of(client, charge)["refunded"] is True


def test_refund_is_allowed_after_a_won_dispute(client, make_session, sandbox):
    _, charge = paid(client, make_session, sandbox)
    dispute = open_dispute(sandbox, charge)
    tool(sandbox, f"disputes/{dispute['id']}/close", outcome="won")
    assert client.v1.refunds.create(params={"charge": charge}).status == "succeeded"


# -- disputes --------------------------------------------------------------------------------


def test_a_chargeback_withdraws_the_funds(client, make_session, sandbox, receiver):
    pi, charge = paid(client, make_session, sandbox)
    dispute = open_dispute(sandbox, charge, amount=20000, reason="product_not_received")
    assert (dispute["status"], dispute["amount"], dispute["reason"]) == (
        "needs_response", 20000, "product_not_received")
    assert (dispute["charge"], dispute["payment_intent"]) == (charge, pi)
    found = dispute_events(client)
    assert [e["type"] for e in found] == ["charge.dispute.created",
                                          "charge.dispute.funds_withdrawn"]
    assert all(e["data"]["object"]["id"] == dispute["id"] for e in found)
    assert all("previous_attributes" not in e["data"] for e in found)
    receiver.wait_for_type("charge.dispute.funds_withdrawn")
    assert receiver.types().index("charge.dispute.created") < receiver.types().index(
        "charge.dispute.funds_withdrawn")
    bad = tool(sandbox, f"charges/{charge}/dispute", refundable="maybe")
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "refundable"


def test_dispute_update_stages_then_submits_evidence(client, make_session, sandbox):
    _, charge = paid(client, make_session, sandbox)
    dispute_id = open_dispute(sandbox, charge)["id"]

    tagged = client.v1.disputes.update(dispute_id, params={"metadata": {"case": "42"}})
    assert_shape(raw(tagged), "dispute")
    assert tagged.metadata.to_dict() == {"case": "42"} and tagged.status == "needs_response"
    assert tagged.evidence_details.submission_count == 0  # metadata alone submits nothing

    staged = client.v1.disputes.update(dispute_id, params={
        "evidence": {"customer_name": "Ada Lovelace", "receipt": "file_receipt123",
                     "uncategorized_text": "Four sessions were booked and attended."},
        "submit": False})
    assert_shape(raw(staged), "dispute")
    assert staged.status == "needs_response"
    assert staged.evidence.customer_name == "Ada Lovelace"
    assert staged.evidence.receipt == "file_receipt123"
    assert (staged.evidence_details.has_evidence, staged.evidence_details.submission_count) == (
        True, 0)

    submitted = client.v1.disputes.update(dispute_id, params={"submit": True})
    assert_shape(raw(submitted), "dispute")
    assert submitted.status == "under_review"
    assert submitted.evidence_details.submission_count == 1
    assert submitted.evidence.uncategorized_text == "Four sessions were booked and attended."

    found = dispute_events(client)
    assert [e["type"] for e in found] == [
        "charge.dispute.created", "charge.dispute.funds_withdrawn", "charge.dispute.updated",
        "charge.dispute.updated", "charge.dispute.updated"]
    meta, stage, submit = (e["data"]["previous_attributes"] for e in found[2:])
    assert meta == {"metadata": {"case": None}}
    assert stage == {
        "evidence": {"customer_name": None, "receipt": None, "uncategorized_text": None},
        "evidence_details": {"has_evidence": False}}
    assert submit == {"status": "needs_response",
                      "evidence_details": {"submission_count": 0}}
    assert found[-1]["request"]["id"] == submitted.last_response.request_id
    assert found[-1]["data"]["object"]["status"] == "under_review"

    # Submitted evidence is locked; metadata can still change (and be unset).
    with pytest.raises(stripe.InvalidRequestError) as locked:
        client.v1.disputes.update(dispute_id, params={"evidence": {"customer_name": "Ada L."}})
    assert locked.value.http_status == 400 and locked.value.param == "evidence"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.disputes.update(dispute_id, params={"submit": True})
    untagged = client.v1.disputes.update(dispute_id, params={"metadata": {"case": ""}})
    assert untagged.metadata.to_dict() == {}
    assert dispute_events(client)[-1]["data"]["previous_attributes"] == {
        "metadata": {"case": "42"}}


def test_evidence_submitted_by_default(client, make_session, sandbox):
    _, charge = paid(client, make_session, sandbox)
    dispute_id = open_dispute(sandbox, charge)["id"]
    # Stripe's `submit` defaults to true: evidence given is evidence submitted.
    updated = client.v1.disputes.update(dispute_id, params={
        "evidence": {"product_description": "Coaching sessions"}})
    assert updated.status == "under_review"
    assert (updated.evidence_details.has_evidence, updated.evidence_details.submission_count) == (
        True, 1)


def test_dispute_update_errors(client, make_session, sandbox):
    _, charge = paid(client, make_session, sandbox)
    dispute_id = open_dispute(sandbox, charge)["id"]
    with pytest.raises(stripe.InvalidRequestError) as no_file:
        client.v1.disputes.update(dispute_id, params={"evidence": {"receipt": "receipt.pdf"}})
    assert (no_file.value.code, no_file.value.param) == ("resource_missing", "evidence[receipt]")
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.disputes.update(dispute_id, params={"evidence": {"alibi": "none"}})
    assert unknown.value.param == "evidence[alibi]"
    with pytest.raises(stripe.InvalidRequestError) as too_long:
        client.v1.disputes.update(dispute_id, params={"evidence": {
            "customer_name": "x" * 5001}})
    assert too_long.value.code == "string_length_exceeded"
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.disputes.update("dp_missing", params={"metadata": {"a": "b"}})
    assert missing.value.http_status == 404
    dispute = client.v1.disputes.retrieve(dispute_id)
    assert (dispute.status, dispute.evidence.receipt, dispute.evidence_details.has_evidence) == (
        "needs_response", None, False)
    assert [e["type"] for e in dispute_events(client)] == [
        "charge.dispute.created", "charge.dispute.funds_withdrawn"]


@pytest.mark.parametrize("outcome", ["won", "lost"])
def test_the_bank_decides_a_dispute(client, make_session, sandbox, receiver, outcome):
    _, charge = paid(client, make_session, sandbox)
    dispute_id = open_dispute(sandbox, charge, refundable=True)["id"]
    client.v1.disputes.update(dispute_id, params={"evidence": {"customer_name": "Ada"}})

    closed = tool(sandbox, f"disputes/{dispute_id}/close", outcome=outcome)
    assert closed.status_code == 200, closed.text
    assert_shape(closed.json(), "dispute")
    assert (closed.json()["status"], closed.json()["is_charge_refundable"]) == (outcome, False)
    fetched = client.v1.disputes.retrieve(dispute_id)
    assert fetched.status == outcome and raw(fetched) == closed.json()
    assert charge_of(client, charge)["disputed"] is True  # a charge stays marked disputed

    found = dispute_events(client)
    expected = ["charge.dispute.closed"] + (
        ["charge.dispute.funds_reinstated"] if outcome == "won" else [])
    assert [e["type"] for e in found][3:] == expected
    closed_event = found[3]
    assert closed_event["data"]["object"]["status"] == outcome
    assert closed_event["data"]["previous_attributes"] == {
        "is_charge_refundable": True, "status": "under_review"}
    if outcome == "won":
        assert "previous_attributes" not in found[4]["data"]
        receiver.wait_for_type("charge.dispute.funds_reinstated")

    again = tool(sandbox, f"disputes/{dispute_id}/close", outcome="won")
    assert again.status_code == 400
    assert again.json()["error"]["type"] == "invalid_request_error"
    assert "already closed" in again.json()["error"]["message"]
    assert client.v1.disputes.retrieve(dispute_id).status == outcome
    bad = tool(sandbox, f"disputes/{dispute_id}/close", outcome="draw")
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "outcome"
    missing = tool(sandbox, "disputes/dp_missing/close", outcome="won")
    assert missing.status_code == 404
    # Evidence for a closed dispute is refused too.
    with pytest.raises(stripe.InvalidRequestError) as late:
        client.v1.disputes.update(dispute_id, params={"evidence": {"customer_name": "Ada"}})
    assert "closed" in late.value.user_message


def test_merchant_accepts_a_dispute(client, make_session, sandbox):
    _, charge = paid(client, make_session, sandbox)
    dispute_id = open_dispute(sandbox, charge)["id"]
    accepted = client.v1.disputes.close(dispute_id)
    assert_shape(raw(accepted), "dispute")
    assert (accepted.status, accepted.is_charge_refundable) == ("lost", False)
    closed = dispute_events(client)[-1]
    assert closed["type"] == "charge.dispute.closed"
    assert closed["data"]["previous_attributes"] == {"status": "needs_response"}
    assert closed["request"]["id"] == accepted.last_response.request_id
    assert closed["request"]["idempotency_key"]
    with pytest.raises(stripe.InvalidRequestError) as twice:
        client.v1.disputes.close(dispute_id)
    assert twice.value.http_status == 400 and "already closed" in twice.value.user_message
    assert [e["type"] for e in dispute_events(client)].count("charge.dispute.closed") == 1


def test_a_dispute_under_review_cannot_be_accepted(client, make_session, sandbox):
    _, charge = paid(client, make_session, sandbox)
    dispute_id = open_dispute(sandbox, charge)["id"]
    client.v1.disputes.update(dispute_id, params={"evidence": {"customer_name": "Ada"}})
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.disputes.close(dispute_id)
    assert refused.value.http_status == 400
    assert client.v1.disputes.retrieve(dispute_id).status == "under_review"


def test_list_disputes_with_filters_and_cursors(client, make_session, sandbox):
    pi_a, charge_a = paid(client, make_session, sandbox)
    pi_b, charge_b = paid(client, make_session, sandbox)
    first = open_dispute(sandbox, charge_a)
    second = open_dispute(sandbox, charge_b)
    listed = client.v1.disputes.list()
    body = raw(listed)
    assert (body["url"], body["has_more"]) == ("/v1/disputes", False)
    assert [d["id"] for d in body["data"]] == [second["id"], first["id"]]
    for dispute in body["data"]:
        assert_shape(dispute, "dispute")
    assert [d.id for d in client.v1.disputes.list(params={"charge": charge_a}).data] == [
        first["id"]]
    assert [d.id for d in client.v1.disputes.list(params={"payment_intent": pi_b}).data] == [
        second["id"]]
    assert client.v1.disputes.list(params={"created": {"lt": first["created"]}}).data == []
    page = client.v1.disputes.list(params={"limit": 1})
    assert [d.id for d in page.data] == [second["id"]] and page.has_more is True
    nxt = client.v1.disputes.list(params={"limit": 1, "starting_after": second["id"]})
    assert [d.id for d in nxt.data] == [first["id"]] and nxt.has_more is False
    prev = client.v1.disputes.list(params={"ending_before": first["id"]})
    assert [d.id for d in prev.data] == [second["id"]]


# -- the tools page ---------------------------------------------------------------------------


BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def test_refunds_page_settles_and_decides_with_forms(client, make_session, sandbox):
    _, charge = paid(client, make_session, sandbox)
    pending = client.v1.refunds.create(params={
        "charge": charge, "amount": 1000, "metadata": {"sandbox_refund": "pending"}})
    done = client.v1.refunds.create(params={"charge": charge, "amount": 500})
    _, other_charge = paid(client, make_session, sandbox)
    dispute_id = open_dispute(sandbox, other_charge)["id"]

    events_page = requests.get(f"{sandbox.url}/_sandbox/events", timeout=10)
    assert 'href="/_sandbox/refunds"' in events_page.text
    page = requests.get(f"{sandbox.url}/_sandbox/refunds", timeout=10)
    assert page.status_code == 200
    for text in (pending.id, done.id, charge, dispute_id, other_charge, "$10.00", "$5.00",
                 "$240.00", "needs_response", 'href="/_sandbox/events"'):
        assert text in page.text
    assert page.text.count(f'action="/_sandbox/refunds/{pending.id}/settle"') == 2
    assert f"/_sandbox/refunds/{done.id}/settle" not in page.text
    assert page.text.count(f'action="/_sandbox/disputes/{dispute_id}/close"') == 2

    # A browser's form post lands back on the page.
    settled = requests.post(f"{sandbox.url}/_sandbox/refunds/{pending.id}/settle",
                            data={"outcome": "failed"}, headers=BROWSER, timeout=10,
                            allow_redirects=False)
    assert settled.status_code == 303 and settled.headers["Location"].endswith(
        "/_sandbox/refunds")
    assert client.v1.refunds.retrieve(pending.id).status == "failed"
    won = requests.post(f"{sandbox.url}/_sandbox/disputes/{dispute_id}/close",
                        data={"outcome": "won"}, headers=BROWSER, timeout=10)
    assert won.status_code == 200 and won.url.endswith("/_sandbox/refunds")  # followed
    assert client.v1.disputes.retrieve(dispute_id).status == "won"

    after = requests.get(f"{sandbox.url}/_sandbox/refunds", timeout=10).text
    assert "/settle" not in after and f"/_sandbox/disputes/{dispute_id}/close" not in after
    assert "failed (declined)" in after
    # Errors stay Stripe-shaped JSON, whoever asks.
    refused = requests.post(f"{sandbox.url}/_sandbox/refunds/{pending.id}/settle",
                            data={"outcome": "failed"}, headers=BROWSER, timeout=10,
                            allow_redirects=False)
    assert refused.status_code == 400 and refused.json()["error"]["type"] == (
        "invalid_request_error")
