"""Money moves only once confirmed: each money form of the console first answers with a
page restating the amount, currency, contract and people, and writes nothing; the
confirmed POST moves the money; a confirmation whose figures changed meanwhile is
refused and changes nothing.

Stripe here is an address where nothing listens (as in test_refunds_admin.py): a refund
that passes every check is recorded and left for the sweep.
"""

# The refund suite's fixtures are imported below, and pytest passes them by name.
# ruff: noqa: F811

from __future__ import annotations

import json
from datetime import UTC, datetime
from html import unescape

import pytest
from sqlalchemy import func, select

from tests.admin.test_payments_admin import add_payment  # noqa: F401
from tests.admin.test_plans_admin import NOON, plan_contract, statuses  # noqa: F401
from tests.admin.test_refunds_admin import (  # noqa: F401  (fixtures)
    app_overrides,
    ask_refund,
    fresh,
    paid_contract,
    refund_count,
)
from tests.conftest import confirm_fields


def page_of(response) -> str:
    return " ".join(unescape(response.get_data(as_text=True)).split())


def figures(response) -> dict[str, str]:
    """The figures a confirmation page restates (what its Confirm button sends back)."""
    return json.loads(confirm_fields(response)["restated"])


def assert_restates(response, *words: str) -> None:
    assert response.status_code == 200
    shown = page_of(response)
    assert "nothing has happened yet" in shown.lower()
    for word in words:
        assert word in shown, word


@pytest.fixture
def other_refund(app, db, admin_user):
    """Another admin's refund, made between the two steps of a confirmation."""
    from payments.refunds import refund_contract

    def refund(contract_id: int, amount: int) -> None:
        with app.test_request_context():
            refund_contract(contract_id, db.session.merge(admin_user), amount=amount,
                            note="Made meanwhile")
            db.session.commit()

    return refund


# --- approve and refund ---------------------------------------------------------------------


def test_approving_a_request_restates_it_then_refunds_once_confirmed(
    db, admin_client, paid_contract, ask_refund
):
    from payments.models import RefundRequest

    contract_id, student = paid_contract(title="Public speaking")
    request_id = ask_refund(contract_id, student)
    data = {"request_id": request_id, "amount": "200.00"}

    asked = admin_client.submit("/admin/refunds/approve", data)
    assert_restates(asked, f"Approve request #{request_id} and refund $200.00 to {student.name}?",
                    "$200.00 (USD)", f"#{contract_id} “Public speaking”", student.name,
                    student.email, "Coachpact keeps $0.00", "Approve and refund $200.00")
    assert refund_count(db) == 0
    assert fresh(db, RefundRequest, request_id).status.value == "open"

    done = admin_client.post("/admin/refunds/approve", data=confirm_fields(asked))
    assert done.status_code == 302
    assert refund_count(db) == 1
    request = fresh(db, RefundRequest, request_id)
    assert (request.status.value, request.approved_amount) == ("approved", 20000)


def test_an_approval_whose_figures_changed_meanwhile_is_refused(
    db, admin_client, paid_contract, ask_refund, other_refund
):
    from payments.models import RefundRequest

    contract_id, student = paid_contract()
    request_id = ask_refund(contract_id, student)
    asked = admin_client.submit("/admin/refunds/approve",
                                {"request_id": request_id, "amount": "100.00",
                                 "override_reason": "Half, as agreed on the phone."})
    assert figures(asked)["Still refundable"] == "$200.00"
    other_refund(contract_id, 5000)

    stale = admin_client.post("/admin/refunds/approve", data=confirm_fields(asked))
    assert stale.status_code == 409
    shown = page_of(stale)
    assert "Something changed since you were asked, so nothing was done." in shown
    assert "Still refundable: $200.00 before, $150.00 now" in shown
    assert refund_count(db) == 1  # only the one made meanwhile
    assert fresh(db, RefundRequest, request_id).status.value == "open"

    # Confirming the new figures goes through.
    assert admin_client.post("/admin/refunds/approve",
                             data=confirm_fields(stale)).status_code == 302
    assert fresh(db, RefundRequest, request_id).approved_amount == 10000


def test_an_approval_confirmed_after_the_request_was_decided_changes_nothing(
    db, admin_client, paid_contract, ask_refund
):
    contract_id, student = paid_contract()
    request_id = ask_refund(contract_id, student)
    data = {"request_id": request_id, "amount": "200.00"}
    asked = admin_client.submit("/admin/refunds/approve", data)
    assert admin_client.post("/admin/refunds/approve",
                             data=confirm_fields(asked)).status_code == 302
    # The same confirmation again (reload, a second tab): the request is approved already.
    again = admin_client.post("/admin/refunds/approve", data=confirm_fields(asked),
                              follow_redirects=True)
    assert f"Request #{request_id} was approved already; nothing was done." in page_of(again)
    assert refund_count(db) == 1


def test_the_service_refuses_a_quote_other_than_the_one_confirmed(
    app, db, admin_user, paid_contract, ask_refund
):
    from payments import refunds

    contract_id, student = paid_contract()
    request_id = ask_refund(contract_id, student)
    with app.test_request_context(), pytest.raises(refunds.RefundRefused, match="not the"):
        refunds.approve_request(request_id, db.session.merge(admin_user), quoted=15000)
    db.session.rollback()
    with app.test_request_context(), pytest.raises(refunds.RefundRefused, match="not the"):
        refunds.cancel_active_contract(contract_id, db.session.merge(admin_user),
                                       reason="Gone", quoted=15000)
    db.session.rollback()
    assert refund_count(db) == 0


# --- bulk approve ---------------------------------------------------------------------------


def test_a_bulk_approval_lists_each_request_and_the_total_per_currency(
    db, admin_client, paid_contract, ask_refund
):
    from payments.models import RefundRequest

    usd = [paid_contract(title=f"Course {n}") for n in (1, 2)]
    eur = paid_contract(title="Cours", currency="eur", price_per_session=3000)
    ids = [ask_refund(*pair) for pair in [*usd, eur]]
    data = {"request_ids": ids, "approve": "Approve selected at their quotes"}

    asked = admin_client.submit("/admin/refunds/decide", data)
    assert_restates(asked, "Approve 3 requests at today's quotes and refund them?",
                    "“Course 1”", "“Course 2”", "“Cours”", usd[0][1].name, eur[1].name,
                    "$400.00 (USD)", "€120.00 (EUR)")
    html = page_of(asked)
    items = html[html.index('id="confirm-items"'):html.index("</tbody>")]
    assert items.count("$200.00 (USD)") == 2 and "€120.00 (EUR)" in items
    assert refund_count(db) == 0
    assert {fresh(db, RefundRequest, i).status.value for i in ids} == {"open"}

    done = admin_client.post("/admin/refunds/decide", data=confirm_fields(asked))
    assert done.status_code == 200 and "Approved: 3 of 3" in page_of(done)
    assert refund_count(db) == 3


def test_a_bulk_approval_whose_figures_changed_meanwhile_decides_none(
    db, admin_client, paid_contract, ask_refund, other_refund
):
    from payments.models import RefundRequest

    pairs = [paid_contract() for _ in range(2)]
    ids = [ask_refund(*pair) for pair in pairs]
    asked = admin_client.submit("/admin/refunds/decide", {"request_ids": ids, "approve": "1"})
    other_refund(pairs[1][0], 2500)

    stale = admin_client.post("/admin/refunds/decide", data=confirm_fields(asked))
    assert stale.status_code == 409
    assert f"Request #{ids[1]}: $200.00 (USD) before, $175.00 (USD) now" in page_of(stale)
    assert refund_count(db) == 1  # the one made meanwhile
    assert {fresh(db, RefundRequest, i).status.value for i in ids} == {"open"}


def test_a_bulk_rejection_needs_no_confirmation(db, admin_client, paid_contract, ask_refund):
    ids = [ask_refund(*paid_contract())]
    response = admin_client.submit("/admin/refunds/decide",
                                   {"request_ids": ids, "reject": "1", "note": "Outside policy"})
    assert "Rejected: 1 of 1" in page_of(response)


# --- issue a refund -------------------------------------------------------------------------


def test_an_admins_refund_restates_it_then_refunds_once_confirmed(
    db, admin_client, paid_contract, other_refund
):
    from payments.models import Refund

    contract_id, student = paid_contract(title="Public speaking")
    url = f"/admin/contracts/{contract_id}/refund"
    data = {"amount": "25.50", "note": "Late start, twice."}

    asked = admin_client.submit(url, data)
    assert_restates(asked, f"Refund $25.50 to {student.name}?", "$25.50 (USD)",
                    "“Public speaking”", student.name, "Late start, twice.",
                    f"$25.50 goes back to {student.name}'s card, through Stripe",
                    "Afterwards the contract keeps $174.50 of what was paid")
    assert refund_count(db) == 0

    done = admin_client.post(url, data=confirm_fields(asked))
    assert done.status_code == 302
    [refund] = db.session.scalars(select(Refund)).all()
    assert (refund.amount, refund.note) == (2550, "Late start, twice.")

    # The same confirmation again: what is left changed, so nothing more is refunded.
    again = admin_client.post(url, data=confirm_fields(asked))
    assert again.status_code == 409
    assert "Still refundable: $200.00 before, $174.50 now" in page_of(again)
    assert refund_count(db) == 1

    # Beyond what is left, the first step refuses already.
    other_refund(contract_id, 17450)
    refused = admin_client.submit(url, data)
    assert "Everything paid for this contract has been refunded already." in page_of(refused)
    assert 'id="confirm-form"' not in refused.get_data(as_text=True)
    assert refund_count(db) == 2


# --- cancel with a refund --------------------------------------------------------------------


def test_cancelling_with_a_refund_shows_what_comes_back_then_cancels_once_confirmed(
    db, admin_client, paid_contract
):
    from contracts.models import Contract
    from payments.models import Refund

    contract_id, student = paid_contract(title="Public speaking")
    url = f"/admin/contracts/{contract_id}/cancel-with-refund"
    asked = admin_client.submit(url, {"reason": "The coach left the platform."})
    assert_restates(asked, "Cancel “Public speaking” and refund $200.00 to",
                    "Refund under its policy", "$200.00 (USD)", student.name,
                    "The coach left the platform.", "its open sessions are cancelled",
                    "Cancel the contract and refund $200.00")
    assert fresh(db, Contract, contract_id).status.value == "active"
    assert refund_count(db) == 0

    done = admin_client.post(url, data=confirm_fields(asked))
    assert done.status_code == 302
    assert fresh(db, Contract, contract_id).status.value == "cancelled"
    [refund] = db.session.scalars(select(Refund)).all()
    assert refund.amount == 20000


def test_a_cancellation_whose_quote_changed_meanwhile_is_refused(
    db, admin_client, paid_contract, other_refund
):
    from contracts.models import Contract

    contract_id, _ = paid_contract()
    url = f"/admin/contracts/{contract_id}/cancel-with-refund"
    asked = admin_client.submit(url, {"reason": "The coach left the platform."})
    other_refund(contract_id, 5000)

    stale = admin_client.post(url, data=confirm_fields(asked))
    assert stale.status_code == 409
    assert "Refund under its policy: $200.00 (USD) before, $150.00 (USD) now" in page_of(stale)
    assert fresh(db, Contract, contract_id).status.value == "active"
    assert refund_count(db) == 1


# --- record an offline payment ----------------------------------------------------------------


MANUAL = {"method": "bank_transfer", "reference": "TR-778", "received_on": "2026-11-20",
          "note": "Paid at the office"}


@pytest.fixture
def pending_contract(db, make_user, make_proposal, clock):
    from contracts.services import accept_proposal

    clock.freeze(datetime(2026, 11, 26, 10, tzinfo=UTC))
    student = make_user("student", name="Zoë Student")
    coach = make_user("coach", name="Carl Coach")
    contract = accept_proposal(make_proposal(coach, student, title="Public speaking"),
                               db.session.merge(student))
    db.session.commit()
    return contract.id


def payment_count(db) -> int:
    from payments.models import Payment

    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(Payment))


def test_recording_an_offline_payment_restates_it_then_records_once_confirmed(
    db, admin_client, pending_contract
):
    from contracts.models import Contract

    url = f"/admin/contracts/{pending_contract}/manual-payment"
    asked = admin_client.submit(url, MANUAL)
    assert_restates(asked, "Record $200.00 received from Zoë Student?", "$200.00 (USD)",
                    "“Public speaking”", "Carl Coach", "Bank transfer", "TR-778",
                    "20 November 2026", "nothing is charged through Stripe")
    assert payment_count(db) == 0
    assert fresh(db, Contract, pending_contract).status.value == "pending"

    done = admin_client.post(url, data=confirm_fields(asked))
    assert done.status_code == 302
    assert payment_count(db) == 1
    assert fresh(db, Contract, pending_contract).status.value == "active"

    # The same confirmation again: the contract is paid now, nothing more is recorded.
    again = admin_client.post(url, data=confirm_fields(asked), follow_redirects=True)
    assert "This contract is paid already; nothing was recorded." in page_of(again)
    assert payment_count(db) == 1


def test_an_offline_payment_whose_amount_changed_meanwhile_is_refused(
    db, admin_client, pending_contract
):
    from contracts.models import Contract

    url = f"/admin/contracts/{pending_contract}/manual-payment"
    asked = admin_client.submit(url, MANUAL)
    # The confirmation is tampered with, or read from an older page: its amount is not today's.
    fields = confirm_fields(asked)
    restated = json.loads(fields["restated"])
    restated["Amount received"] = "$150.00 (USD)"
    fields["restated"] = json.dumps(restated)
    stale = admin_client.post(url, data=fields)
    assert stale.status_code == 409
    assert "Amount received: $150.00 (USD) before, $200.00 (USD) now" in page_of(stale)
    assert payment_count(db) == 0
    assert fresh(db, Contract, pending_contract).status.value == "pending"


def test_a_confirmation_page_needs_no_script_and_keeps_the_csrf_check(
    db, admin_client, paid_contract
):
    contract_id, _ = paid_contract()
    url = f"/admin/contracts/{contract_id}/refund"
    asked = admin_client.submit(url, {"amount": "10.00", "note": "Goodwill"})
    html = asked.get_data(as_text=True)
    form = html[html.index('id="confirm-form"'):]
    form = form[:form.index("</form>")]
    assert 'name="csrf_token"' in form and 'name="confirm" value="1"' in form
    assert "<script" not in html[html.index("<main"):html.index("</main>")]
    fields = confirm_fields(asked)
    del fields["csrf_token"]
    assert admin_client.post(url, data=fields).status_code == 400
    assert refund_count(db) == 0


# --- a plan: cancel it with its refund, record an instalment paid offline ---------------------


def test_cancelling_a_plan_shows_its_refund_then_cancels_once_confirmed(
    db, admin_client, plan_contract, clock, other_refund
):
    from payments.models import PaymentPlan

    clock.freeze(NOON)
    built = plan_contract()
    url = f"/admin/contracts/{built.contract_id}/plan/cancel"
    asked = admin_client.submit(url, {"reason": "The student moved abroad."})
    assert_restates(asked, "Cancel the plan of “Plan coaching 1” and refund $50.00 to Student 1?",
                    "$50.00 (USD)", "The payment plan ends", "Cancel the plan and refund $50.00")
    assert fresh(db, PaymentPlan, built.plan_id).status.value == "active"
    assert refund_count(db) == 0

    other_refund(built.contract_id, 1000)  # meanwhile: the quote is now $40.00
    stale = admin_client.post(url, data=confirm_fields(asked))
    assert stale.status_code == 409
    assert "$50.00 (USD) before, $40.00 (USD) now" in page_of(stale)
    assert fresh(db, PaymentPlan, built.plan_id).status.value == "active"
    assert refund_count(db) == 1

    done = admin_client.post(url, data=confirm_fields(stale))
    assert done.status_code == 302
    assert fresh(db, PaymentPlan, built.plan_id).status.value == "cancelled"
    assert refund_count(db) == 2


def test_recording_an_instalment_paid_offline_restates_it_then_records_once_confirmed(
    db, admin_client, plan_contract, clock
):
    clock.freeze(NOON)
    built = plan_contract()
    first = built.instalment_ids[1]
    url = f"/admin/contracts/{built.contract_id}/plan/record-payment"
    asked = admin_client.submit(url, {"instalment_id": first, "reference": "TR-42"})
    assert_restates(asked, "Record instalment 1 of $50.00 received from Student 1?",
                    "$50.00 (USD)", "“Plan coaching 1”", "TR-42", "Record $50.00 received")
    assert payment_count(db) == 1  # the deposit only
    assert statuses(db, built)[1] == "scheduled"

    assert admin_client.post(url, data=confirm_fields(asked)).status_code == 302
    assert payment_count(db) == 2
    assert statuses(db, built)[1] == "paid"
    # The same confirmation again: the instalment is paid, nothing more is recorded.
    again = admin_client.post(url, data=confirm_fields(asked), follow_redirects=True)
    assert "This instalment is paid; nothing to record." in page_of(again)
    assert payment_count(db) == 2


# --- the review queue: refuse a held payment and refund it ------------------------------------


def test_refunding_a_held_payment_restates_it_then_refunds_once_confirmed(
    db, admin_client, make_contract, add_payment
):
    from payments.models import Payment, Refund

    contract = make_contract(title="Public speaking")
    held = add_payment(contract, status="pending", checkout_session_id="cs_test_held",
                       payment_intent_id="pi_held", review_reason="currency eur ≠ usd")
    url = f"/admin/reviews/{held.id}/refund"
    asked = admin_client.submit(url, {"note": "Wrong currency"})
    assert_restates(asked, f"Refuse payment #{held.id} and refund $200.00 to Ana Ruiz?",
                    "$200.00 (USD)", "“Public speaking”", "Maya Coach", "Wrong currency")
    assert refund_count(db) == 0
    assert fresh(db, Payment, held.id).held_for_review

    assert admin_client.post(url, data=confirm_fields(asked)).status_code == 302
    [refund] = db.session.scalars(select(Refund)).all()
    assert (refund.payment_id, refund.amount) == (held.id, 20000)


def test_a_held_payment_accepted_meanwhile_is_not_refunded(
    db, admin_client, make_contract, add_payment
):
    from payments.models import Payment

    contract = make_contract()
    held = add_payment(contract, status="pending", checkout_session_id="cs_test_held",
                       payment_intent_id="pi_held", review_reason="currency eur ≠ usd")
    asked = admin_client.submit(f"/admin/reviews/{held.id}/refund", {"note": "Wrong currency"})
    assert admin_client.submit(f"/admin/reviews/{held.id}/accept",
                               {"note": "The bank confirmed it"}).status_code == 302

    late = admin_client.post(f"/admin/reviews/{held.id}/refund", data=confirm_fields(asked),
                             follow_redirects=True)
    assert "This payment was decided already; nothing changed." in page_of(late)
    assert refund_count(db) == 0
    assert fresh(db, Payment, held.id).review_resolution.value == "accepted"
