"""An approved refund, seen by the student (Payments, receipt, refund page) and by the coach.

The contract is paid through Checkout at the sandbox; the student asks through
the refund page; the admin's approval is taken as the admin console takes it:
`approve_request`, commit, then `send_refund` asks the sandbox through the SDK.
"""

from __future__ import annotations

import html as html_lib
import re

from sqlalchemy import func, select

from contracts.money import format_money
from tests.conftest import login
from tests.payments.conftest import contract_state, payments
from tests.support import wait_for

REASON = "My new job leaves me no evening free for the sessions."


def log_in_as(client, user):
    """The same browser, now `user`'s (test clients in one thread share the CSRF token)."""
    client.submit("/auth/logout")
    login(client, user)
    return client


def get_html(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return html_lib.unescape(response.get_data(as_text=True))


def row_of(html: str, attribute: str, value: int) -> str:
    match = re.search(rf'<tr {attribute}="{value}">(.*?)</tr>', html, re.S)
    assert match, f"no row {attribute}={value}"
    return match.group(1)


def words(fragment: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", fragment).split())


def net_earning(client, contract_id: int) -> str:
    row = row_of(get_html(client, "/earnings"), "data-contract", contract_id)
    match = re.search(r'data-col="net_earning">(.*?)</td>', row, re.S)
    assert match
    return words(match.group(1))


def contract_of(db, contract_id: int):
    from contracts.models import Contract

    db.session.expire_all()
    return db.session.get(Contract, contract_id)


def approve(app, db, contract_id: int, admin, **decision):
    """What the admin console does: approve the open request, commit, then ask Stripe."""
    from payments import refunds

    with app.test_request_context():
        request = refunds.open_request_of(contract_of(db, contract_id))
        refund = refunds.approve_request(request.id, db.session.merge(admin), **decision)
        db.session.commit()
        return refunds.send_refund(refund.id)


def wait_for_stripe_events(db, refunds_made: int) -> None:
    """Stripe's own events for the refunds come back through the webhook and change nothing."""
    from payments.models import EventStatus, WebhookEvent

    def processed() -> int:
        db.session.expire_all()
        return db.session.scalar(
            select(func.count()).select_from(WebhookEvent).where(
                WebhookEvent.type == "refund.created",
                WebhookEvent.status == EventStatus.PROCESSED,
            )
        )

    wait_for(lambda: processed() == refunds_made, 10, "the refund events")


def succeeded_refunds_total(db, payment_id: int) -> int:
    from payments.models import Refund, RefundStatus

    db.session.expire_all()
    return db.session.scalar(
        select(func.coalesce(func.sum(Refund.amount), 0)).where(
            Refund.payment_id == payment_id, Refund.status == RefundStatus.SUCCEEDED
        )
    )


def test_an_approved_refund_shows_on_payments_receipt_refund_page_and_earnings(
    app, db, student_client, paid, admin
):
    contract_id, student, coach = paid
    client = student_client
    [payment] = payments(db, contract_id)
    coach_earning = contract_of(db, contract_id).coach_earning

    assert client.submit(f"/contracts/{contract_id}/refund",
                         {"category": "schedule", "reason": REASON}).status_code == 302
    # Waiting for a decision: the Payments page says so on the payment of that contract.
    row = words(row_of(get_html(client, "/payments"), "data-payment", payment.id))
    assert "Refund of $200.00 asked on" in row and "waiting for a decision" in row

    log_in_as(client, coach)
    assert net_earning(client, contract_id) == format_money(coach_earning, "usd")
    detail = get_html(client, f"/contracts/{contract_id}")
    assert 'id="money-back"' not in detail and "Request a refund" not in detail

    refund = approve(app, db, contract_id, admin)
    assert (refund.status.value, refund.amount, refund.source.value) == (
        "succeeded", 20000, "student_request")
    wait_for_stripe_events(db, 1)
    assert contract_state(db, contract_id) == ("refunded", "refunded")
    [payment] = payments(db, contract_id)
    # What the earnings page sums is what the succeeded refunds gave back.
    assert payment.amount_refunded == succeeded_refunds_total(db, payment.id) == 20000

    # The coach's net goes down by the coach's share of the refund: all of it here.
    share = 20000 * coach_earning // contract_of(db, contract_id).total_amount
    assert net_earning(client, contract_id) == format_money(coach_earning - share, "usd")
    assert net_earning(client, contract_id) == "$0.00"

    log_in_as(client, student)
    row = row_of(get_html(client, "/payments"), "data-payment", payment.id)
    [listed] = re.findall(rf'data-refund="{refund.id}">(.*?)</div>', row, re.S)
    assert "$200.00" in listed and 'data-status="succeeded"' in listed
    assert "waiting for a decision" not in row

    receipt = get_html(client, f"/payments/{payment.id}/receipt")
    refund_row = words(row_of(receipt, "data-refund", refund.id))
    assert "$200.00" in refund_row and "Succeeded" in refund_row
    assert re.search(r'id="receipt-refunded">\$200\.00<', receipt)

    page = get_html(client, f"/contracts/{contract_id}/refund")
    assert "Everything paid for this contract has been refunded already." in page
    assert 'id="refund-form"' not in page
    decision = re.search(r'<li class="list-group-item" data-request="\d+">(.*?)</li>', page, re.S)
    assert decision and "Approved" in decision.group(1) and "$200.00 approved" in words(
        decision.group(1))
    refund_row = words(row_of(page, "data-refund", refund.id))
    assert "Your request" in refund_row and "Succeeded" in refund_row and "$200.00" in refund_row


def test_a_partial_approval_lowers_the_net_by_the_coachs_share_and_the_next_quote(
    app, db, student_client, paid, admin
):
    contract_id, student, coach = paid
    client = student_client
    contract = contract_of(db, contract_id)
    coach_earning, total = contract.coach_earning, contract.total_amount

    assert client.submit(f"/contracts/{contract_id}/refund",
                         {"category": "personal", "reason": REASON}).status_code == 302
    refund = approve(app, db, contract_id, admin, amount=5000,
                     override_reason="One session's price, agreed with the coach.")
    assert (refund.status.value, refund.amount) == ("succeeded", 5000)
    wait_for_stripe_events(db, 1)
    assert contract_state(db, contract_id) == ("active", "partially_refunded")
    [payment] = payments(db, contract_id)
    assert payment.amount_refunded == succeeded_refunds_total(db, payment.id) == 5000

    # Today's quote is net of what came back; the decision says why its amount differed.
    page = get_html(client, f"/contracts/{contract_id}/refund")
    assert re.search(r'id="quote-amount">\$150\.00<', page)
    assert "$50.00 was refunded already, so $150.00 is what remains to refund." in page
    assert "Why this amount: One session's price, agreed with the coach." in page
    assert 'id="refund-form"' in page
    row = words(row_of(get_html(client, "/payments"), "data-payment", payment.id))
    assert "$50.00 Succeeded" in row

    log_in_as(client, coach)
    share = 5000 * coach_earning // total
    assert share == 4750  # 5% fee: the coach earns 190.00 of 200.00
    # The refund comes off each session's part as payouts take it: 4 parts of 47.50 each
    # lose 47.50 × 50.00 ÷ 200.00 = 11.875, rounded up to 11.88.
    parts = [coach_earning // 4] * 4
    kept = sum(part - -(-part * 5000 // total) for part in parts)
    assert net_earning(client, contract_id) == format_money(kept, "usd") == "$142.48"

