"""A payment held for review and refused by an admin goes back in full through Stripe."""

from __future__ import annotations

import copy

import pytest
from sqlalchemy import func, select

from tests.conftest import login
from tests.payments.conftest import contract_state, deliver, payments, start_checkout

HOLD = {"SANDBOX_HOLD_EVENTS": "1"}


@pytest.mark.parametrize("sandbox_knobs", [HOLD])
def test_refusing_a_held_payment_refunds_it_once_and_activates_nothing(
    app, db, student_client, sandbox, pending_contract, make_user, sandbox_knobs
):
    from audit.models import AuditEntry
    from notifications.models import Notification
    from payments.models import Refund

    contract_id = pending_contract[0]
    told_before = db.session.scalar(select(func.max(Notification.id)))  # the proposal's
    sandbox.pay(start_checkout(student_client, contract_id))
    completed = next(e for e in sandbox.events() if e["type"] == "checkout.session.completed")
    tampered = copy.deepcopy(completed)
    tampered["data"]["object"]["amount_total"] = 100
    assert deliver(student_client, tampered).status_code == 200
    [held] = payments(db, contract_id)
    assert held.held_for_review

    # The same browser, now an admin's (test clients in one thread share the CSRF token).
    admin = student_client
    admin.submit("/auth/logout")
    login(admin, make_user("admin"))
    url = f"/admin/reviews/{held.id}/refund"
    assert admin.submit_confirmed(
        url, {"note": "Amount does not match the contract"}).status_code == 302
    again = admin.submit(url, {"note": "again"}, follow_redirects=True)
    assert "decided already" in again.get_data(as_text=True)

    # The refund job asked Stripe once; Stripe's event brings the refund back through the inbox.
    [refund_event] = sandbox.events("charge.refunded")
    assert deliver(student_client, refund_event).status_code == 200
    [payment] = payments(db, contract_id)
    assert (payment.status.value, payment.amount_refunded) == ("refunded", payment.amount)
    [refund] = db.session.scalars(select(Refund).filter_by(payment_id=payment.id)).all()
    assert payment.void_reason.value == "review" and refund.stripe_refund_id.startswith("re_")
    assert (refund.source.value, refund.status.value, refund.amount) == (
        "duplicate", "succeeded", payment.amount)
    assert contract_state(db, contract_id) == ("pending", "pending")
    actions = db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions.count("payment.review_refunded") == 1
    assert (actions.count("refund.created"), actions.count("refund.succeeded")) == (1, 1)
    assert "contract.paid" not in actions
    told = {
        n.user_id
        for n in db.session.scalars(select(Notification).where(Notification.id > told_before))
    }
    assert told == {pending_contract[1].id, pending_contract[2].id}
