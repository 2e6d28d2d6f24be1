"""Admin: the payments list, its search and pages, the CSV export, a payment's page,
manual payments and the review queue."""

from __future__ import annotations

import csv
import io
import re
import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from contracts.money import format_money
from tests.conftest import confirm_fields, login


@pytest.fixture
def add_payment(db):
    """Insert a payment row as Stripe's events would have left it."""
    from payments.models import Payment, PaymentRecordStatus

    def add(contract, *, status="succeeded", created_at=None, **columns):
        columns.setdefault("amount", contract.total_amount)
        columns.setdefault("currency", contract.currency)
        payment = Payment(
            contract_id=contract.id,
            status=PaymentRecordStatus(status),
            created_at=created_at or datetime(2026, 11, 20, 12, tzinfo=UTC),
            **columns,
        )
        db.session.add(payment)
        db.session.commit()
        return payment

    return add


def listed_ids(client, query: str = "") -> list[int]:
    html = client.get(f"/admin/payments/list{query}").get_data(as_text=True)
    return [int(i) for i in re.findall(r'data-payment-id="(\d+)"', html)]


def test_filters_and_search_find_the_right_payments(db, admin_client, make_contract, add_payment):
    from payments.models import Refund, RefundSource

    ana = make_contract("Ana Ruiz", "ana@example.com", currency="usd")
    kenji = make_contract("Kenji Sato", "kenji@example.com", currency="jpy", price_per_session=5000)
    card = add_payment(ana, checkout_session_id="cs_test_aaa", payment_intent_id="pi_aaa",
                       charge_id="ch_aaa", customer_id="cus_aaa", payment_method_type="card")
    failed = add_payment(ana, status="failed", checkout_session_id="cs_test_bbb",
                         created_at=datetime(2026, 11, 18, 23, 59, tzinfo=UTC))
    yen = add_payment(kenji, checkout_session_id="cs_test_ccc",
                      created_at=datetime(2026, 11, 19, 0, 1, tzinfo=UTC),
                      review_reason="amount 1 ≠ 20000")
    db.session.add(Refund(payment_id=yen.id, contract_id=kenji.id, amount=yen.amount,
                          currency="jpy", source=RefundSource.DUPLICATE, stripe_refund_id="re_ccc"))
    db.session.commit()
    manual = add_payment(kenji, payment_method_type="manual", manual_method="cash",
                         manual_reference="R-1")

    assert set(listed_ids(admin_client)) == {card.id, failed.id, yen.id, manual.id}
    assert listed_ids(admin_client, "?status=failed") == [failed.id]
    assert set(listed_ids(admin_client, "?currency=jpy")) == {yen.id, manual.id}
    assert listed_ids(admin_client, "?method=manual") == [manual.id]
    assert listed_ids(admin_client, "?method=card") == [card.id]
    assert listed_ids(admin_client, "?held=1") == [yen.id]
    # The range is of UTC days, both ends included: 23:59 on the 18th is out, 00:01 on the 19th in.
    assert listed_ids(admin_client, "?start=2026-11-19&end=2026-11-19") == [yen.id]
    assert listed_ids(admin_client, "?start=2026-11-18&end=2026-11-18") == [failed.id]
    for stripe_id in ("cs_test_aaa", "pi_aaa", "ch_aaa", "cus_aaa"):
        assert listed_ids(admin_client, f"?q={stripe_id}") == [card.id]
    assert listed_ids(admin_client, "?q=re_ccc") == [yen.id]
    assert set(listed_ids(admin_client, f"?q={kenji.id}")) == {yen.id, manual.id}
    assert set(listed_ids(admin_client, "?q=ANA@example.com")) == {card.id, failed.id}
    assert set(listed_ids(admin_client, "?q=kenji")) == {yen.id, manual.id}
    assert listed_ids(admin_client, "?q=nobody-like-this") == []


def test_bad_filters_say_what_is_wrong_and_are_ignored(admin_client, make_contract, add_payment):
    payment = add_payment(make_contract(), checkout_session_id="cs_test_x")
    response = admin_client.get("/admin/payments/list?start=yesterday&status=lost&currency=dollars")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "is not a date" in html and "Unknown status" in html and "three letters" in html
    assert listed_ids(admin_client, "?start=yesterday") == [payment.id]


def test_keyset_pages_cover_every_payment_once_in_order(admin_client, make_contract, add_payment):
    contract = make_contract()
    start = datetime(2026, 10, 1, tzinfo=UTC)
    made = [
        # Some share a creation time: the id breaks the tie, so none is skipped or repeated.
        add_payment(contract, checkout_session_id=f"cs_test_{n:03d}",
                    created_at=start + timedelta(minutes=n // 3)).id
        for n in range(125)
    ]
    seen: list[int] = []
    url = "/admin/payments/list"
    pages = 0
    while url:
        html = admin_client.get(url).get_data(as_text=True)
        seen += [int(i) for i in re.findall(r'data-payment-id="(\d+)"', html)]
        found = re.search(r'id="next-page" rel="next"\s+href="([^"]+)"', html)
        url = found.group(1).replace("&amp;", "&") if found else None
        pages += 1
    assert pages == 3
    assert len(seen) == len(set(seen)) == 125
    assert sorted(seen) == sorted(made)
    # Newest first, ties by id descending.

    def key(payment_id):
        return (admin_client.application and payment_id)

    assert seen == sorted(made, key=lambda i: (start + timedelta(minutes=made.index(i) // 3), i),
                          reverse=True)


def test_amount_sort_pages_by_amount(admin_client, make_contract, add_payment):
    contract = make_contract()
    for n in range(60):
        add_payment(contract, checkout_session_id=f"cs_test_amt_{n}", amount=1000 + (n * 37) % 500)
    first = admin_client.get("/admin/payments/list?sort=amount_desc").get_data(as_text=True)
    assert 'id="next-page"' in first
    cursor = re.search(r'id="next-page" rel="next"\s+href="([^"]+)"', first).group(1)
    second = admin_client.get(cursor.replace("&amp;", "&")).get_data(as_text=True)
    ids = [int(i) for i in re.findall(r'data-payment-id="(\d+)"', first + second)]
    assert len(ids) == len(set(ids)) == 60


def test_csv_export_has_the_filtered_rows_escaped_and_neutralised(
    admin_client, make_contract, add_payment
):
    evil = make_contract('=HYPERLINK("http://evil.example")', "evil@example.com",
                         title='Coaching, "advanced"')
    plain = make_contract("Plain Student", "plain@example.com")
    a = add_payment(evil, checkout_session_id="cs_test_evil", review_reason="-1 ≠ 2")
    add_payment(plain, status="failed", checkout_session_id="cs_test_plain")

    response = admin_client.get("/admin/payments/export.csv?status=succeeded")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [int(r["payment_id"]) for r in rows] == [a.id]
    [row] = rows
    assert row["student_name"] == "'=HYPERLINK(\"http://evil.example\")"
    assert row["contract_title"] == 'Coaching, "advanced"'
    assert row["review_reason"] == "'-1 ≠ 2"
    assert row["amount_minor"] == str(evil.total_amount) and row["currency"] == "usd"
    assert row["amount_formatted"] == format_money(evil.total_amount, "usd")
    assert row["amount_refunded_minor"] == "0" and row["amount_refunded_formatted"] == "$0.00"
    # Every cell quoted, numbers too, so no reader takes a separator inside one for its end.
    assert response.get_data(as_text=True).splitlines()[1].startswith(f'"{a.id}","')


def test_csv_neutralises_every_formula_start():
    from admin.payment_queries import neutralise

    for start in ("=", "+", "-", "@", "\t", "\r"):
        assert neutralise(f"{start}1+1") == f"'{start}1+1"
        # A spreadsheet that splits on `;` or `,` (or ignores the quotes) starts a cell there.
        for separator in (";", ",", "; ", ', "'):
            assert neutralise(f"a{separator}{start}1+1") == f"a{separator}'{start}1+1"
    assert neutralise('Jo;=HYPERLINK("x");-2,+3') == "Jo;'=HYPERLINK(\"x\");'-2,'+3"
    assert neutralise("  =1+1") == "  '=1+1"
    for harmless in ("plain", "a-b; c+d, e@f", "2026-12-01T10:00:00", "ana+x@example.com",
                     "$1,234.50"):
        assert neutralise(harmless) == harmless
    assert neutralise(42) == 42


def test_csv_writes_amounts_for_people_in_each_currency_with_refunds(
    admin_client, make_contract, add_payment
):
    contract = make_contract()
    add_payment(contract, amount=20000, currency="usd", amount_refunded=5050,
                checkout_session_id="cs_test_usd")
    add_payment(contract, amount=5000, currency="jpy", checkout_session_id="cs_test_jpy")
    response = admin_client.get("/admin/payments/export.csv")
    rows = {r["checkout_session_id"]: r
            for r in csv.DictReader(io.StringIO(response.get_data(as_text=True)))}
    usd, jpy = rows["cs_test_usd"], rows["cs_test_jpy"]
    assert (usd["amount_minor"], usd["amount_formatted"]) == ("20000", "$200.00")
    assert (usd["amount_refunded_minor"], usd["amount_refunded_formatted"]) == ("5050", "$50.50")
    assert (jpy["amount_minor"], jpy["amount_formatted"]) == ("5000", "¥5,000")
    assert jpy["amount_refunded_formatted"] == "¥0"


def test_a_payment_page_shows_its_facts_and_timeline(
    admin_client, db, make_contract, add_payment
):
    from audit.services import record
    from payments.models import EventStatus, WebhookEvent

    contract = make_contract()
    payment = add_payment(contract, checkout_session_id="cs_test_tl", payment_intent_id="pi_tl",
                          payment_method_type="card")
    record("payment.checkout_started", payment, actor_label="ana@example.com")
    db.session.add(WebhookEvent(stripe_event_id="evt_tl", type="checkout.session.completed",
                                payload="{}", status=EventStatus.PROCESSED, outcome="fulfilled",
                                object_id="cs_test_tl", payment_intent_id="pi_tl"))
    db.session.add(WebhookEvent(stripe_event_id="evt_other", type="charge.refunded",
                                payload="{}", object_id="ch_else", payment_intent_id="pi_else"))
    db.session.commit()
    html = admin_client.get(f"/admin/payments/{payment.id}").get_data(as_text=True)
    assert "cs_test_tl" in html and "pi_tl" in html and "Maya Coach" in html
    timeline = html.split('id="timeline"')[1]
    assert "payment.checkout_started" in timeline and "evt_tl" in timeline
    assert "evt_other" not in timeline
    assert "Open in Stripe" not in html  # the sandbox has no dashboard
    assert admin_client.get("/admin/payments/999999").status_code == 404


def test_the_timeline_reads_as_sentences_with_money_formatted(
    admin_client, db, make_contract, add_payment
):
    from audit.services import record
    from payments.models import EventStatus, WebhookEvent

    contract = make_contract()
    payment = add_payment(contract, checkout_session_id="cs_test_words",
                          payment_intent_id="pi_words", payment_method_type="us_bank_account")
    record("payment.flagged", payment, actor_label="stripe:webhook",
           after={"reason": "Stripe reported $72.00; the contract expects $144.00."})
    record("contract.paid", contract, actor_label="stripe",
           before={"status": "pending", "payment_status": "pending"},
           after={"status": "active", "payment_status": "paid", "amount": 14400,
                  "amount_paid": 14400})
    record("plan.some_new_thing", payment, actor_label="system", after={"note": "kept"})
    db.session.add(WebhookEvent(stripe_event_id="evt_words", type="checkout.session.completed",
                                payload="{}", status=EventStatus.PROCESSED, outcome="fulfilled",
                                object_id="cs_test_words", payment_intent_id="pi_words"))
    db.session.commit()
    html = admin_client.get(f"/admin/payments/{payment.id}").get_data(as_text=True)
    timeline = html.split('id="timeline"')[1]
    assert "The payment was held for review." in timeline
    assert "by Stripe · Stripe reported $72.00; the contract expects $144.00." in timeline
    assert "The contract was paid in full." in timeline
    assert "status: pending → active; payment status: pending → paid" in timeline
    assert "amount: $144.00; amount paid: $144.00" in timeline
    assert "Plan some new thing." in timeline and "note: kept" in timeline  # unknown: words
    assert "Stripe: the Checkout session was completed" in timeline
    assert ">checkout.session.completed</code>" in timeline  # the event type, kept small
    # No raw dict, no bare minor units, no "Stripe event · " code line.
    assert "{" not in timeline and "&#39;status&#39;" not in timeline
    assert "14400" not in timeline
    assert "US bank account" in html and "us bank account" not in html


# --- manual payments -------------------------------------------------------------------


def manual_form(**overrides):
    return {"method": "bank_transfer", "reference": "TR-2026-11", "received_on": "2026-11-20",
            "note": "Paid at the office", **overrides}


def test_a_manual_payment_activates_the_contract_once(admin_client, db, make_contract, clock):
    from audit.models import AuditEntry
    from contracts.models import Contract
    from notifications.models import Notification
    from payments.models import Payment

    clock.freeze(datetime(2026, 11, 26, 10, tzinfo=UTC))
    contract = make_contract()
    told_before = db.session.scalar(select(func.max(Notification.id)))  # the proposal's
    url = f"/admin/contracts/{contract.id}/manual-payment"
    first = admin_client.submit_confirmed(url, manual_form())
    assert first.status_code == 302
    again = admin_client.submit(url, manual_form(), follow_redirects=True)
    assert "paid already" in again.get_data(as_text=True)

    db.session.expire_all()
    [payment] = db.session.scalars(select(Payment)).all()
    assert (payment.method, payment.status.value, payment.amount) == (
        "manual", "succeeded", contract.total_amount)
    assert payment.received_on == date(2026, 11, 20) and payment.manual_reference == "TR-2026-11"
    refreshed = db.session.get(Contract, contract.id)
    assert (refreshed.status.value, refreshed.payment_status.value) == ("active", "paid")
    actions = db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions == ["payment.manual_recorded", "contract.paid"]
    admin_ids = db.session.scalars(select(AuditEntry.actor_id)).all()
    assert len(set(admin_ids)) == 1 and admin_ids[0] is not None
    notes = db.session.scalars(select(Notification).where(Notification.id > told_before)).all()
    assert sorted(n.user_id for n in notes) == sorted([contract.coach_id, contract.student_id])


def test_a_manual_payment_form_says_what_is_wrong(admin_client, db, make_contract, clock):
    from payments.models import Payment

    clock.freeze(datetime(2026, 11, 26, 10, tzinfo=UTC))
    contract = make_contract()
    url = f"/admin/contracts/{contract.id}/manual-payment"
    html = admin_client.submit(url, manual_form(reference="", received_on="")).get_data(
        as_text=True)
    assert "reference" in html.lower() and "The date the money came." in html
    future = admin_client.submit(url, manual_form(received_on="2026-12-01"),
                                 follow_redirects=True).get_data(as_text=True)
    assert "in the future" in future
    assert db.session.scalar(select(func.count()).select_from(Payment)) == 0


@pytest.mark.postgres
def test_two_manual_payments_at_once_record_one(app, db, make_contract, admin_user, clock):
    from concurrent.futures import ThreadPoolExecutor

    from payments.models import Payment

    contract = make_contract()
    clients = [app.test_client(), app.test_client()]

    def log_in(each) -> str:
        # In a thread of its own, each client gets its own app context (in the test's
        # context both would share `g`, where the CSRF token is cached).
        login(each, admin_user)
        return each.csrf_token()

    with ThreadPoolExecutor(max_workers=1) as pool:
        tokens = [pool.submit(log_in, each).result() for each in clients]
    barrier = threading.Barrier(2)
    statuses = []
    today = clock.now().date().isoformat()
    url = f"/admin/contracts/{contract.id}/manual-payment"
    # Both admins read the same confirmation, then confirm at once.
    with ThreadPoolExecutor(max_workers=1) as pool:
        asked = pool.submit(lambda: clients[0].post(
            url, data={**manual_form(received_on=today), "csrf_token": tokens[0]})).result()
    confirmed = confirm_fields(asked)

    def post(each, token):
        barrier.wait()
        statuses.append(each.post(url, data={**confirmed, "csrf_token": token}).status_code)

    pairs = zip(clients, tokens, strict=True)
    threads = [threading.Thread(target=post, args=pair) for pair in pairs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(statuses) == [302, 302]
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Payment)) == 1


# --- the review queue ----------------------------------------------------------------------


def test_accepting_a_held_payment_pays_the_contract_once(admin_client, db, make_contract,
                                                          add_payment):
    from contracts.models import Contract
    from notifications.models import Notification

    contract = make_contract()
    told_before = db.session.scalar(select(func.max(Notification.id)))  # the proposal's
    held = add_payment(contract, status="pending", checkout_session_id="cs_test_held",
                       payment_intent_id="pi_held", review_reason="currency eur ≠ usd")
    queue = admin_client.get("/admin/reviews").get_data(as_text=True)
    assert "currency eur ≠ usd" in queue

    url = f"/admin/reviews/{held.id}/accept"
    assert admin_client.submit(url, {"note": ""}, follow_redirects=True).status_code == 200
    db.session.expire_all()
    assert db.session.get(Contract, contract.id).status.value == "pending"  # a note is required

    assert admin_client.submit(url, {"note": "Bank confirmed the amount"}).status_code == 302
    again = admin_client.submit(url, {"note": "twice"}, follow_redirects=True)
    assert "decided already" in again.get_data(as_text=True)
    db.session.expire_all()
    refreshed = db.session.get(Contract, contract.id)
    assert (refreshed.status.value, refreshed.payment_status.value) == ("active", "paid")
    payment = db.session.get(type(held), held.id)
    assert (payment.status.value, payment.review_resolution.value) == ("succeeded", "accepted")
    told = {
        n.user_id
        for n in db.session.scalars(select(Notification).where(Notification.id > told_before))
    }
    assert told == {contract.coach_id, contract.student_id}
    assert "Nothing is waiting" in admin_client.get("/admin/reviews").get_data(as_text=True)


def test_the_export_streams_past_its_chunks_without_losing_rows(
    app, db, make_contract, add_payment
):
    """Rows come in chunks from a streaming cursor; every chunk boundary is crossed."""
    from admin.payment_queries import PaymentFilters, export_csv

    contract = make_contract()
    for n in range(25):
        add_payment(contract, checkout_session_id=f"cs_test_chunk_{n}")
    with app.test_request_context():
        chunks = list(export_csv(PaymentFilters(), chunk_rows=10))
    assert len(chunks) == 3  # 10 rows (after the header), 10, then the last 5
    rows = list(csv.DictReader(io.StringIO("".join(chunks))))
    assert sorted(r["checkout_session_id"] for r in rows) == sorted(
        f"cs_test_chunk_{n}" for n in range(25))
