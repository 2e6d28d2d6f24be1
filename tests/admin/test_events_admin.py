"""The webhook event log: the list, an event's page, and replays."""

from __future__ import annotations

import html
import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.conftest import login


def ids_on(page: str, kind: str) -> list[int]:
    return [int(i) for i in re.findall(rf'<tr id="{kind}-(\d+)"', page)]


def next_link(page: str) -> str | None:
    match = re.search(r'id="next-page" rel="next"\s+href="([^"]+)"', page)
    return html.unescape(match.group(1)) if match else None


def walk(client, url: str, kind: str) -> tuple[list[int], int]:
    """Follow the "Next page" links from `url`; every id shown, and the number of pages."""
    seen: list[int] = []
    pages = 0
    next_url: str | None = url
    while next_url:
        page = client.get(next_url).get_data(as_text=True)
        seen += ids_on(page, kind)
        pages += 1
        next_url = next_link(page)
    return seen, pages


def stripe_event(event_id: str, type_: str, about: dict) -> dict:
    return {"id": event_id, "object": "event", "type": type_, "data": {"object": about}}


@pytest.fixture
def make_event(db):
    """Insert an inbox row as the webhook would (failed or processed if asked); its id."""
    from payments.inbox.store import record_event
    from payments.models import EventStatus, WebhookEvent

    counter = iter(range(1, 100_000))

    def make(type_: str = "customer.updated", about: dict | None = None, *, status=None,
             age: timedelta = timedelta(0), **columns) -> int:
        n = next(counter)
        event = stripe_event(f"evt_test_{n}", type_, about or {"id": f"cus_{n}"})
        row_id = record_event(event, json.dumps(event))
        row = db.session.get(WebhookEvent, row_id)
        row.received_at = row.received_at - age
        row.status = status or EventStatus.RECEIVED
        for name, value in columns.items():
            setattr(row, name, value)
        db.session.commit()
        return row_id

    return make


@pytest.fixture
def pending_payment(db, make_user, make_proposal):
    """A pending $200 contract and its open Checkout attempt: (contract id, payment id)."""
    from contracts.services import accept_proposal
    from payments.models import Payment

    student = make_user("student", name="Ana Student")
    contract = accept_proposal(make_proposal(student=student), db.session.merge(student))
    db.session.flush()
    payment = Payment(contract_id=contract.id, checkout_session_id="cs_test_paid",
                      amount=contract.total_amount, currency=contract.currency)
    db.session.add(payment)
    db.session.commit()
    return contract.id, payment.id


def completed_session(contract_id: int) -> dict:
    return {"id": "cs_test_paid", "object": "checkout.session", "amount_total": 20000,
            "currency": "usd", "metadata": {"contract_id": str(contract_id)},
            "payment_status": "paid", "status": "complete", "payment_intent": "pi_test_paid"}


@pytest.fixture
def paid_event(db, make_event, pending_payment):
    """The checkout.session.completed that paid the contract, processed by the pipeline."""
    from payments.inbox.processing import process_event_job

    event_id = make_event("checkout.session.completed", completed_session(pending_payment[0]))
    process_event_job(event_id)  # jobs run at once in tests
    return event_id


def event_row(db, event_id: int):
    from payments.models import WebhookEvent

    db.session.expire_all()
    return db.session.get(WebhookEvent, event_id)


def entries(db, **criteria) -> list:
    from audit.models import AuditEntry

    db.session.expire_all()
    return list(db.session.scalars(select(AuditEntry).filter_by(**criteria)))


# --- the list -------------------------------------------------------------------------------


def test_the_log_lists_events_newest_first(admin_client, make_event):
    from payments.models import EventStatus

    older = make_event("customer.updated")
    newer = make_event("charge.refunded", {"id": "ch_1", "payment_intent": "pi_1"},
                       status=EventStatus.FAILED, attempts=7, last_error="RetryLater: not known")
    page = admin_client.get("/admin/events").get_data(as_text=True)
    assert ids_on(page, "event") == [newer, older]
    row = page[page.index(f'id="event-{newer}"'):]
    assert "charge.refunded" in row and "evt_test_2" in row and "ch_1" in row
    assert 'data-status="failed"' in row and "RetryLater: not known" in row
    assert re.search(r'<td[^>]*class="text-end"[^>]*>7</td>', row)


def test_filters_narrow_the_log(admin_client, make_event):
    from payments.models import EventStatus

    ignored = make_event("customer.updated", status=EventStatus.PROCESSED, outcome="ignored")
    failed = make_event("charge.refunded", {"id": "ch_9", "payment_intent": "pi_9"},
                        status=EventStatus.FAILED)
    waiting = make_event("charge.refunded", {"id": "ch_8", "payment_intent": "pi_8"})

    def shown(query: str) -> list[int]:
        return ids_on(admin_client.get(f"/admin/events?{query}").get_data(as_text=True), "event")

    assert shown("type=charge.refunded") == [waiting, failed]
    assert shown("status=failed") == [failed]
    assert shown("type=charge.refunded&status=received") == [waiting]
    assert shown("stripe_id=pi_9") == [failed]  # the payment intent it names
    assert shown("stripe_id=evt_test_1") == [ignored]
    assert shown("status=nonsense") == [waiting, failed, ignored]  # ignored, not an error
    page = admin_client.get("/admin/events").get_data(as_text=True)
    assert '<option value="charge.refunded">' in page  # the types present are offered


def test_keyset_pages_have_no_gaps_or_repeats(db, admin_client):
    from payments.models import EventStatus, WebhookEvent

    db.session.add_all(
        WebhookEvent(stripe_event_id=f"evt_bulk_{n}", type="customer.updated", payload="{}",
                     status=EventStatus.FAILED if n % 2 else EventStatus.PROCESSED)
        for n in range(120)
    )
    db.session.commit()
    every = list(db.session.scalars(select(WebhookEvent.id).order_by(WebhookEvent.id.desc())))

    seen, pages = walk(admin_client, "/admin/events", "event")
    assert seen == every and pages == 3

    # A filter holds across pages: the next link carries it.
    failed = [i for i in every if event_row(db, i).status is EventStatus.FAILED]
    seen, pages = walk(admin_client, "/admin/events?status=failed", "event")
    assert seen == failed and pages == 2


# --- an event's page ---------------------------------------------------------------------------


def test_the_payload_is_shown_indented_and_escaped(admin_client, make_event):
    event_id = make_event("customer.updated", {"id": "cus_1", "name": "<script>alert(1)</script>"})
    response = admin_client.get(f"/admin/events/{event_id}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)" not in page
    payload = re.search(r'<pre[^>]*id="payload">(.*?)</pre>', page, re.S).group(1)
    assert '\n  &#34;id&#34;: &#34;evt_test_1&#34;' in payload  # indented, one key a line
    assert '\n      &#34;id&#34;: &#34;cus_1&#34;' in payload


def test_an_event_page_shows_processing_and_the_payment_it_concerns(
    app, admin_client, paid_event, pending_payment
):
    contract_id, payment_id = pending_payment
    page = admin_client.get(f"/admin/events/{paid_event}").get_data(as_text=True)
    assert 'id="outcome">fulfilled<' in page and 'id="attempts">1<' in page
    assert 'data-status="processed"' in page
    related = page[page.index('id="related-payments"'):]
    assert f'data-payment="{payment_id}"' in related
    assert f'href="/admin/contracts/{contract_id}"' in related
    if "admin.payment_detail" in app.view_functions:
        assert f"/admin/payments/{payment_id}" in related
    assert 'id="replay"' in page and 'id="retry-now"' not in page


def test_an_unknown_event_is_404(admin_client):
    assert admin_client.get("/admin/events/999999").status_code == 404
    assert admin_client.submit("/admin/events/999999/replay").status_code == 404


# --- replays ---------------------------------------------------------------------------------


def test_replaying_a_processed_event_changes_nothing_and_is_audited(
    db, admin_client, admin_user, paid_event, pending_payment
):
    from payments.models import EventStatus

    contract_id = pending_payment[0]
    before = event_row(db, paid_event)
    state = (before.status, before.outcome, before.attempts, before.processed_at)
    trail = len(entries(db, object_type="contracts", object_id=contract_id))
    payments_trail = len(entries(db, object_type="payments"))

    response = admin_client.submit(f"/admin/events/{paid_event}/replay", follow_redirects=True)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "already processed; replaying changed nothing" in page

    after = event_row(db, paid_event)
    assert (after.status, after.outcome, after.attempts, after.processed_at) == state
    assert state[0] is EventStatus.PROCESSED and state[1] == "fulfilled"
    assert len(entries(db, object_type="contracts", object_id=contract_id)) == trail
    assert len(entries(db, object_type="payments")) == payments_trail
    [replayed] = entries(db, action="event.replayed")
    assert (replayed.object_type, replayed.object_id) == ("webhook_events", paid_event)
    assert replayed.actor_id == admin_user.id and replayed.actor_label == admin_user.email
    assert replayed.after == {"result": "unchanged", "status": "processed"}
    assert 'id="event-history"' in page and "event.replayed" in page  # shown on the page


def test_retry_now_processes_a_failed_event(db, admin_client, admin_user, make_event):
    from payments.models import EventStatus

    event_id = make_event("customer.updated", status=EventStatus.FAILED, attempts=9,
                          last_error="OperationalError: database is locked",
                          age=timedelta(days=4))
    assert 'id="retry-now"' in admin_client.get(f"/admin/events/{event_id}").get_data(as_text=True)

    response = admin_client.submit(f"/admin/events/{event_id}/replay", follow_redirects=True)
    assert "evt_test_1 was processed: ignored." in response.get_data(as_text=True)
    event = event_row(db, event_id)
    assert event.status is EventStatus.PROCESSED and event.outcome == "ignored"
    assert event.attempts == 10 and event.last_error is None and event.processed_at
    [replayed] = entries(db, action="event.replayed")
    assert replayed.actor_id == admin_user.id
    assert replayed.before == {"status": "failed", "attempts": 9, "outcome": None}
    assert replayed.after == {"result": "queued", "status": "received"}


def test_retry_now_on_a_failed_checkout_event_pays_the_contract(
    db, admin_client, make_event, pending_payment
):
    from contracts.models import Contract, ContractStatus, PaymentStatus
    from payments.models import EventStatus

    contract_id = pending_payment[0]
    event_id = make_event("checkout.session.completed", completed_session(contract_id),
                          status=EventStatus.FAILED, attempts=3, last_error="Boom",
                          age=timedelta(days=4))
    response = admin_client.submit(f"/admin/events/{event_id}/replay", follow_redirects=True)
    assert "was processed: fulfilled." in response.get_data(as_text=True)
    db.session.expire_all()
    contract = db.session.get(Contract, contract_id)
    assert (contract.status, contract.payment_status) == (ContractStatus.ACTIVE, PaymentStatus.PAID)

    # A second press is a no-op: the event applies once.
    again = admin_client.submit(f"/admin/events/{event_id}/replay", follow_redirects=True)
    assert "already processed; replaying changed nothing" in again.get_data(as_text=True)
    assert len(entries(db, action="contract.paid")) == 1


def test_a_retry_that_fails_again_says_so(db, admin_client, make_event):
    from payments.models import EventStatus

    # A refund for a payment intent we do not know: still unmatched, past Stripe's window.
    event_id = make_event("charge.refunded", {"id": "ch_x", "payment_intent": "pi_unknown"},
                          status=EventStatus.FAILED, attempts=4, age=timedelta(days=4))
    response = admin_client.submit(f"/admin/events/{event_id}/replay", follow_redirects=True)
    assert "failed again and stays failed: RetryLater" in response.get_data(as_text=True)
    event = event_row(db, event_id)
    assert event.status is EventStatus.FAILED and event.attempts == 5


# --- nobody else sees any of it ---------------------------------------------------------------


@pytest.mark.parametrize("role", ["student", "coach", None])
def test_the_event_log_is_404_to_everyone_but_admins(db, client, make_user, make_event, role):
    from audit.models import AuditEntry
    from payments.models import EventStatus

    event_id = make_event("customer.updated", status=EventStatus.FAILED)
    if role:
        login(client, make_user(role))
    for url in ("/admin/events", f"/admin/events/{event_id}", "/admin/events?status=failed"):
        assert client.get(url).status_code == 404, url
    assert client.submit(f"/admin/events/{event_id}/replay").status_code == 404
    assert event_row(db, event_id).status is EventStatus.FAILED
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)) == 0
