"""Admin: refund requests (one by one and in bulk), the refunds list, disputes, a contract's
"Money back" section and the dashboard's counts, without Stripe answering.

Stripe here is an address where nothing listens, so a refund that passes every check is
recorded and left for the sweep; refunds that reach Stripe (the sandbox) are tested in
tests/payments/test_refunds_admin_flow.py.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape

import pytest
from sqlalchemy import func, select

from tests.conftest import login

NOON = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def app_overrides():
    # Nothing listens on port 9 (discard): Stripe cannot be reached, whatever runs locally.
    return {"STRIPE_API_BASE": "http://127.0.0.1:9", "STRIPE_MAX_NETWORK_RETRIES": 0}


@pytest.fixture
def paid_contract(app, db, make_user, make_proposal, clock):
    """A contract paid through Stripe, as its webhook leaves it: (contract id, student)."""
    from contracts.lifecycle import mark_paid
    from contracts.services import accept_proposal
    from payments.models import Payment, PaymentRecordStatus

    counter = iter(range(1, 1000))

    def make(*, student=None, **terms):
        n = next(counter)
        student = student or make_user("student", name=f"Student {n}")
        contract = accept_proposal(make_proposal(student=student, **terms),
                                   db.session.merge(student))
        db.session.add(Payment(
            contract_id=contract.id, amount=contract.total_amount, currency=contract.currency,
            status=PaymentRecordStatus.SUCCEEDED, checkout_session_id=f"cs_test_money_{n}",
            payment_intent_id=f"pi_money_{n}", charge_id=f"ch_money_{n}",
            payment_method_type="card", paid_at=clock.now(),
        ))
        with app.test_request_context():  # the parties' notifications link to the contract
            mark_paid(contract, paid_at=clock.now(), details={}, actor_label="stripe:webhook")
            db.session.commit()
        return contract.id, student

    return make


@pytest.fixture
def ask_refund(app, db):
    """The student asks for a refund through the service; returns the request's id."""
    from payments.models import RefundCategory
    from payments.refunds import request_refund

    def ask(contract_id, student, reason="My new job leaves no time for it.",
            category=RefundCategory.SCHEDULE) -> int:
        with app.test_request_context():
            request = request_refund(contract_id, db.session.merge(student),
                                     category=category, reason=reason)
            db.session.commit()
            return request.id

    return ask


def fresh(db, model, row_id):
    db.session.expire_all()
    return db.session.get(model, row_id)


def refund_count(db) -> int:
    from payments.models import Refund

    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(Refund))


def text_of(html: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"[^>]*>(.*?)</', html, re.S)
    assert match, f"no #{element_id} on the page"
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", match.group(1))).split())


def card(html: str, element_id: str) -> str:
    """The HTML of the card (or row) with this id, up to the next one."""
    start = html.index(f'id="{element_id}"')
    following = re.search(r'<div class="card cp-card mb-3" id="request-', html[start + 1:])
    return html[start:start + 1 + following.start()] if following else html[start:]


def value_of(html: str, element_id: str) -> str:
    """The value of the input with this id."""
    match = re.search(rf'<input[^>]*id="{element_id}"[^>]*>', html)
    assert match, f"no input #{element_id} on the page"
    found = re.search(r'value="([^"]*)"', match.group(0))
    return unescape(found.group(1)) if found else ""


def requests_shown(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-request-id="(\d+)"', html)]


# --- who may see it -----------------------------------------------------------------------


@pytest.mark.parametrize("who", ["anonymous", "student", "coach"])
def test_every_money_back_address_is_a_404_to_anyone_but_an_admin(
    client, make_user, paid_contract, ask_refund, who
):
    contract_id, student = paid_contract()
    request_id = ask_refund(contract_id, student)
    if who == "student":
        login(client, student)  # even the student whose request it is
    elif who == "coach":
        login(client, make_user("coach"))
    for url in ("/admin/refunds", "/admin/refunds/all", "/admin/disputes"):
        assert client.get(url).status_code == 404, (who, url)
    posts = {
        "/admin/refunds/approve": {"request_id": request_id, "amount": "200.00"},
        "/admin/refunds/reject": {"request_id": request_id, "note": "no"},
        "/admin/refunds/decide": {"request_ids": [request_id], "approve": "1"},
        f"/admin/contracts/{contract_id}/cancel-with-refund": {"reason": "x"},
        f"/admin/contracts/{contract_id}/refund": {"amount": "1.00", "note": "x"},
    }
    for url, data in posts.items():
        assert client.submit(url, data).status_code == 404, (who, url)


# --- the open requests ----------------------------------------------------------------------


def test_open_requests_are_listed_oldest_first_with_both_quotes(
    db, admin_client, paid_contract, ask_refund, clock
):
    from payments.models import RefundCategory

    clock.freeze(NOON)
    first, ana = paid_contract(currency="jpy", price_per_session=5000)
    older = ask_refund(first, ana, "The coach moved the sessions\nto the middle of the night.",
                       RefundCategory.COACH_UNAVAILABLE)
    clock.advance(timedelta(days=15))  # the first one's full-refund window (14 days) has closed
    second, tom = paid_contract()
    newer = ask_refund(second, tom)

    html = admin_client.get("/admin/refunds").get_data(as_text=True)
    assert requests_shown(html) == [older, newer]
    first_card = card(html, f"request-{older}")
    assert f'href="/admin/contracts/{first}"' in first_card
    assert ana.name in first_card and ana.email in first_card
    assert "The coach is not available" in first_card
    assert "to the middle of the night." in text_of(first_card, f"reason-{older}")
    assert text_of(first_card, f"quoted-{older}") == "¥20,000"
    assert text_of(first_card, f"today-{older}") == "¥20,000"
    assert text_of(first_card, f"explanation-{older}") == (
        "The full refund ended 14 days after payment; the 4 sessions not used come back at "
        "¥5,000 each: ¥20,000.")
    assert text_of(first_card, f"left-{older}").startswith("¥20,000 of ¥20,000 paid")
    assert value_of(first_card, f"amount-{older}") == "20000"  # jpy has no minor unit
    newer_card = card(html, f"request-{newer}")
    assert text_of(newer_card, f"explanation-{newer}").startswith("No session has been used")
    assert value_of(newer_card, f"amount-{newer}") == "200.00"
    assert f'form="bulk-form" name="request_ids" value="{newer}"' in newer_card


def test_approving_another_amount_needs_a_reason_and_changes_nothing(
    db, admin_client, paid_contract, ask_refund
):
    from payments.models import RefundRequest

    contract_id, student = paid_contract()
    request_id = ask_refund(contract_id, student)

    response = admin_client.submit("/admin/refunds/approve",
                                   {"request_id": request_id, "amount": "150.00"})
    assert response.status_code == 200
    shown = card(response.get_data(as_text=True), f"request-{request_id}")
    assert ("The policy gives $200.00; say why a different amount is refunded."
            in unescape(shown))
    assert value_of(shown, f"amount-{request_id}") == "150.00"  # what the admin typed is kept
    request = fresh(db, RefundRequest, request_id)
    assert (request.status.value, request.approved_amount) == ("open", None)
    assert refund_count(db) == 0


def test_an_amount_stripe_could_not_give_back_is_refused(
    db, admin_client, paid_contract, ask_refund
):
    from payments.models import RefundRequest

    contract_id, student = paid_contract()
    request_id = ask_refund(contract_id, student)

    for amount, error in [
        ("250.00", "Only $200.00 is still refundable on this contract."),
        ("12.345", "USD takes at most 2 decimals."),
        ("-5", "The amount must be more than zero."),
        ("", "Enter the amount to refund."),
    ]:
        response = admin_client.submit("/admin/refunds/approve", {
            "request_id": request_id, "amount": amount, "override_reason": "Goodwill"})
        assert response.status_code == 200
        assert error in unescape(card(response.get_data(as_text=True), f"request-{request_id}"))
    assert fresh(db, RefundRequest, request_id).status.value == "open"
    assert refund_count(db) == 0
    assert admin_client.submit("/admin/refunds/approve",
                               {"request_id": 999999, "amount": "1.00"}).status_code == 404


def test_an_approval_stripe_cannot_hear_yet_is_recorded_and_sent_later(
    db, admin_client, paid_contract, ask_refund
):
    from payments.models import Refund, RefundRequest
    from payments.refunds import unsent_refund_ids

    contract_id, student = paid_contract()
    request_id = ask_refund(contract_id, student)

    response = admin_client.submit_confirmed("/admin/refunds/approve",
                                             {"request_id": request_id, "amount": "200.00"})
    assert response.status_code == 302
    page = admin_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Stripe could not be reached just now, so it will be sent shortly" in page
    assert f'data-request-id="{request_id}"' not in page  # decided: off the queue
    request = fresh(db, RefundRequest, request_id)
    assert (request.status.value, request.approved_amount) == ("approved", 20000)
    [refund] = db.session.scalars(select(Refund)).all()
    assert (refund.status.value, refund.amount, refund.stripe_refund_id) == ("pending", 20000, None)
    assert refund.source.value == "student_request" and refund.request_id == request_id
    # The sweep finds it once its job has had its minute.
    assert refund.id not in unsent_refund_ids()


def test_rejecting_needs_a_note_and_tells_the_student_why(
    db, admin_client, paid_contract, ask_refund
):
    from notifications.models import Notification
    from payments.models import RefundRequest

    contract_id, student = paid_contract()
    request_id = ask_refund(contract_id, student)

    response = admin_client.submit("/admin/refunds/reject", {"request_id": request_id, "note": " "})
    assert response.status_code == 200
    assert ("Say why the request is rejected; the student sees it."
            in card(response.get_data(as_text=True), f"request-{request_id}"))
    assert fresh(db, RefundRequest, request_id).status.value == "open"

    note = "Three of the four sessions already took place."
    response = admin_client.submit("/admin/refunds/reject",
                                   {"request_id": request_id, "note": note})
    assert response.status_code == 302
    request = fresh(db, RefundRequest, request_id)
    assert (request.status.value, request.decision_note) == ("rejected", note)
    told = db.session.scalars(
        select(Notification.message).where(Notification.user_id == student.id)
    ).all()
    assert any(note in message for message in told)
    assert refund_count(db) == 0


def test_bulk_decisions_say_what_happened_to_each(
    db, admin_client, paid_contract, ask_refund
):
    from payments.models import RefundRequest

    ids = [ask_refund(*paid_contract()) for _ in range(3)]
    # Nothing ticked, no button, or a rejection without a note: the queue says why.
    for data, error in [
        ({"approve": "1"}, "Tick the requests to decide."),
        ({"request_ids": ids}, "Choose to approve or to reject the selected requests."),
        ({"request_ids": ids, "reject": "1"}, "Say why they are rejected; students see it."),
    ]:
        response = admin_client.submit("/admin/refunds/decide", data)
        assert response.status_code == 200 and error in response.get_data(as_text=True)
    ticked = re.findall(r'name="request_ids" value="(\d+)"\s+id="pick-\d+" checked',
                        response.get_data(as_text=True))
    assert ticked == [str(i) for i in ids]  # the ticks are kept
    # One of them is decided meanwhile, by another admin.
    assert admin_client.submit("/admin/refunds/reject",
                               {"request_id": ids[1], "note": "Decided first"}).status_code == 302

    response = admin_client.submit("/admin/refunds/decide",
                                   {"request_ids": ids, "reject": "1", "note": "Outside policy"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert text_of(html, "results").startswith("Request")
    results = dict(re.findall(r'id="result-(\d+)" data-ok="(\w+)"', html))
    assert results == {str(ids[0]): "yes", str(ids[1]): "no", str(ids[2]): "yes"}
    assert "This request was rejected already." in html
    assert "Rejected: 2 of 3" in html
    notes = [fresh(db, RefundRequest, i).decision_note for i in ids]
    assert notes == ["Outside policy", "Decided first", "Outside policy"]


# --- the refunds list --------------------------------------------------------------------


def test_the_refunds_list_shows_every_source_and_filters_by_status(
    db, admin_client, paid_contract
):
    from payments.models import Payment, Refund, RefundSource, RefundStatus

    contract_id, _ = paid_contract()
    payment = db.session.scalar(select(Payment).filter_by(contract_id=contract_id))
    failed = Refund(payment_id=payment.id, contract_id=contract_id, amount=5000, currency="usd",
                    source=RefundSource.DASHBOARD, stripe_refund_id="re_dashboard_1",
                    status=RefundStatus.FAILED, failure_reason="expired_or_canceled_card")
    done = Refund(payment_id=payment.id, contract_id=contract_id, amount=2500, currency="usd",
                  source=RefundSource.DUPLICATE, stripe_refund_id="re_duplicate_1",
                  status=RefundStatus.SUCCEEDED, settled_at=NOON)
    db.session.add_all([failed, done])
    db.session.commit()

    html = admin_client.get("/admin/refunds/all").get_data(as_text=True)
    assert re.findall(r'data-refund-id="(\d+)"', html) == [str(done.id), str(failed.id)]
    row = html[html.index(f'id="refund-{failed.id}"'):]
    row = row[:row.index("</tr>")]
    assert "$50.00" in row and "re_dashboard_1" in row and "Stripe Dashboard" in row
    assert 'data-status="failed"' in row and "expired_or_canceled_card" in row
    failed_only = admin_client.get("/admin/refunds/all?status=failed").get_data(as_text=True)
    assert re.findall(r'data-refund-id="(\d+)"', failed_only) == [str(failed.id)]
    none = admin_client.get("/admin/refunds/all?status=canceled").get_data(as_text=True)
    assert 'id="no-refunds"' in none


# --- disputes and the dashboard ---------------------------------------------------------


@pytest.fixture
def dispute_on(app, db):
    """Stripe's `charge.dispute.*` object for a contract's payment, mirrored as its event is."""
    from payments.models import Payment
    from payments.refunds.disputes import mirror_dispute

    def mirror(contract_id, dispute_id, *, due, status="needs_response", reason="fraudulent"):
        payment = db.session.scalar(select(Payment).filter_by(contract_id=contract_id))
        with app.test_request_context():
            mirror_dispute({
                "id": dispute_id, "object": "dispute", "payment_intent": payment.payment_intent_id,
                "charge": payment.charge_id, "amount": payment.amount, "currency": payment.currency,
                "reason": reason, "status": status, "is_charge_refundable": False,
                "evidence_details": {"due_by": int(due.timestamp())},
            })
            db.session.commit()

    return mirror


def test_disputes_are_listed_by_deadline_and_the_dashboard_counts_what_waits(
    db, admin_client, paid_contract, ask_refund, dispute_on, clock
):
    clock.freeze(NOON)
    late, _ = paid_contract()
    soon, _ = paid_contract()
    later, _ = paid_contract()
    decided, _ = paid_contract()
    waiting, student = paid_contract()
    dispute_on(later, "dp_later", due=NOON + timedelta(days=10))
    dispute_on(soon, "dp_soon", due=NOON + timedelta(days=2))
    dispute_on(late, "dp_late", due=NOON - timedelta(hours=1))
    dispute_on(decided, "dp_decided", due=NOON + timedelta(days=5))
    dispute_on(decided, "dp_decided", due=NOON + timedelta(days=5), status="won")
    ask_refund(waiting, student)

    html = admin_client.get("/admin/disputes").get_data(as_text=True)
    open_table = html[html.index('id="open-disputes"'):html.index('id="closed-disputes"')]
    order = re.findall(r"<code>(dp_\w+)</code>", open_table)
    assert order == ["dp_late", "dp_soon", "dp_later"]
    urgency = {dispute: level for level, dispute in
               re.findall(r'data-urgency="(\w+)"[^>]*>\s*<td[^>]*><code>(dp_\w+)', open_table)}
    assert urgency == {"dp_late": "past", "dp_soon": "soon", "dp_later": "none"}
    assert "Past due" in open_table and "Under 3 days" in open_table
    assert f'href="/admin/contracts/{soon}"' in open_table and "$200.00" in open_table
    assert "fraudulent" in open_table and "needs response" in open_table
    assert "12 Mar 2026" in open_table  # dp_later's evidence deadline, in the admin's zone
    closed = html[html.index('id="closed-disputes"'):]
    assert "dp_decided" in closed and 'data-status="won"' in closed

    dashboard = admin_client.get("/admin/payments").get_data(as_text=True)
    assert text_of(dashboard, "open-refund-requests") == "1"
    assert text_of(dashboard, "open-disputes") == "3"
    assert text_of(dashboard, "dispute-deadline").startswith("Nearest evidence deadline: ")
    assert "2 Mar 2026" in text_of(dashboard, "dispute-deadline")  # dp_late's, an hour ago
    assert 'href="/admin/refunds" id="tile-refunds"' in dashboard
    assert 'href="/admin/disputes" id="tile-disputes"' in dashboard


def test_a_request_on_a_disputed_payment_shows_the_dispute_and_cannot_be_approved(
    db, admin_client, paid_contract, ask_refund, dispute_on, clock
):
    contract_id, student = paid_contract()
    request_id = ask_refund(contract_id, student)
    dispute_on(contract_id, "dp_after_request", due=clock.now() + timedelta(days=7))

    shown = card(admin_client.get("/admin/refunds").get_data(as_text=True),
                 f"request-{request_id}")
    assert "open dispute on this payment" in text_of(shown, f"dispute-{request_id}")
    assert "no refund can be made until the dispute is closed" in shown
    response = admin_client.submit("/admin/refunds/approve",
                                   {"request_id": request_id, "amount": "200.00"})
    assert "no refund can be made until the dispute is closed" in response.get_data(as_text=True)
    assert refund_count(db) == 0


# --- a contract's page ---------------------------------------------------------------------


def test_a_contracts_page_shows_its_money_back_and_refuses_forms_without_reasons(
    db, admin_client, paid_contract, ask_refund, make_proposal, make_user
):
    from contracts.models import Contract
    from contracts.services import accept_proposal

    contract_id, student = paid_contract()
    request_id = ask_refund(contract_id, student)
    url = f"/admin/contracts/{contract_id}"

    html = admin_client.get(url).get_data(as_text=True)
    money = html[html.index('id="money-back"'):html.index('id="sessions"')]
    assert text_of(money, "money-quote") == "$200.00"
    assert text_of(money, "money-left") == "$200.00"
    assert 'id="cancel-form"' in money and 'id="refund-form"' in money
    assert "Cancel the contract and refund $200.00" in money
    assert value_of(money, "refund-amount") == "200.00"
    assert f'id="request-{request_id}" data-status="open"' in money

    response = admin_client.submit(f"{url}/cancel-with-refund", {"reason": ""})
    assert response.status_code == 200
    assert "Say why the contract is cancelled; both parties see it." in response.get_data(
        as_text=True)
    response = admin_client.submit(f"{url}/refund", {"amount": "10.00", "note": ""})
    assert "Say why this refund is made." in response.get_data(as_text=True)
    response = admin_client.submit(f"{url}/refund", {"amount": "900.00", "note": "Goodwill"})
    assert "Only $200.00 is still refundable" in response.get_data(as_text=True)
    assert fresh(db, Contract, contract_id).status.value == "active"
    assert refund_count(db) == 0

    # A contract nobody paid has nothing to give back, and no form offers to.
    pending = accept_proposal(make_proposal(student=student), db.session.merge(student))
    db.session.commit()
    html = admin_client.get(f"/admin/contracts/{pending.id}").get_data(as_text=True)
    assert 'id="cancel-form"' not in html and 'id="refund-form"' not in html
    assert "The student has not asked for a refund." in html
    response = admin_client.submit(f"/admin/contracts/{pending.id}/cancel-with-refund",
                                   {"reason": "Changed plans"})
    assert "only an active one can be cancelled with a refund" in response.get_data(as_text=True)


def test_a_bulk_approval_while_stripe_is_away_records_every_refund(
    db, admin_client, paid_contract, ask_refund
):
    from payments.models import Refund, RefundRequest

    ids = [ask_refund(*paid_contract()) for _ in range(2)]
    response = admin_client.submit_confirmed("/admin/refunds/decide",
                                             {"request_ids": ids, "approve": "1"})
    assert response.status_code == 200
    html = unescape(response.get_data(as_text=True))
    results = dict(re.findall(r'id="result-(\d+)" data-ok="(\w+)"', html))
    assert results == {str(i): "yes" for i in ids}
    assert html.count("could not be reached just now, so it will be sent shortly") == 2
    assert [fresh(db, RefundRequest, i).status.value for i in ids] == ["approved"] * 2
    refunds = db.session.scalars(select(Refund).order_by(Refund.id)).all()
    assert [(r.status.value, r.stripe_refund_id) for r in refunds] == [("pending", None)] * 2
