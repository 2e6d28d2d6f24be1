"""Admin: the one search box in the console's header, and the payments list's search.

A customer quotes a partial email, a name without its accent, a contract's title,
the reference printed on the success page and the receipt, an invoice number or one
of Stripe's ids: each finds the payment, its contract and its people. The module runs
on SQLite and, with DATABASE_URL set, on PostgreSQL (where the trigram indexes serve it).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from tests.support import add_session

TITLE = "Étude de piano — débutants"
SESSION_ID = "cs_test_a1B2c3D4e5F6g7H8i9J0kLmN"


@pytest.fixture
def zoe(db, make_contract):
    """Zoë's contract and its card payment, as Stripe's events would have left it, with a
    refund, a dispute and the events Stripe sent; also someone else's contract."""
    from payments.models import (
        Dispute,
        Payment,
        PaymentRecordStatus,
        Refund,
        RefundSource,
        WebhookEvent,
    )

    contract = make_contract("Zoë Lefèvre", "zoe.student@example.com", coach_name="Kenji Sato",
                             title=TITLE)
    other = make_contract("Ana Ruiz", "ana@example.com", title="Interview coaching")
    payment = Payment(
        contract_id=contract.id, amount=contract.total_amount, currency=contract.currency,
        status=PaymentRecordStatus.PARTIALLY_REFUNDED, amount_refunded=1000,
        checkout_session_id=SESSION_ID, payment_intent_id="pi_test_zoe",
        charge_id="ch_test_zoe", customer_id="cus_test_zoe", payment_method_type="card",
        balance_transaction_id="txn_test_zoe",
        created_at=datetime(2026, 11, 20, 12, tzinfo=UTC),
    )
    failed = Payment(contract_id=other.id, amount=other.total_amount, currency=other.currency,
                     status=PaymentRecordStatus.FAILED, checkout_session_id="cs_test_other",
                     created_at=datetime(2026, 11, 21, 12, tzinfo=UTC))
    db.session.add_all([payment, failed])
    db.session.flush()
    db.session.add_all([
        Refund(payment_id=payment.id, contract_id=contract.id, amount=1000,
               currency=contract.currency, source=RefundSource.ADMIN,
               stripe_refund_id="re_test_zoe"),
        Dispute(stripe_dispute_id="dp_test_zoe", payment_id=payment.id, contract_id=contract.id,
                amount=1000, currency=contract.currency, reason="fraudulent",
                status="won", contract_status_before="active",
                payment_status_before="paid"),
        WebhookEvent(stripe_event_id="evt_test_zoe", type="charge.refunded", payload="{}",
                     object_id="ch_test_zoe", payment_intent_id="pi_test_zoe"),
    ])
    db.session.commit()
    return contract, payment, other, failed


def found(client, q: str) -> dict[str, list[int]]:
    """What the search page shows for `q`: the ids in each group."""
    answer = client.get("/admin/search", query_string={"q": q})
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    return {
        group: [int(i) for i in re.findall(rf'id="{prefix}-(\d+)"', html)]
        for group, prefix in (("people", "person"), ("contracts", "contract"),
                              ("payments", "payment"))
    }


def listed_ids(client, q: str) -> list[int]:
    html = client.get("/admin/payments/list", query_string={"q": q}).get_data(as_text=True)
    return [int(i) for i in re.findall(r'data-payment-id="(\d+)"', html)]


@pytest.mark.parametrize("q", [
    "zoe.student",  # part of the email
    "ZOE.Student@Example.com",  # the whole email, in any case
    "zoe",  # the name without its accent
    "lefevre zoe",  # both names, in any order, no accents
    "Lefèvre",  # with them
    "etude de piano",  # the contract's title, no accents
    "DÉBUTANTS",  # a word of it, upper case
])
def test_text_finds_the_person_their_contract_and_payment(admin_client, zoe, q):
    contract, payment, other, failed = zoe

    result = found(admin_client, q)

    assert result["contracts"] == [contract.id]
    assert result["payments"] == [payment.id]
    assert set(listed_ids(admin_client, q)) == {payment.id}  # the payments list reads it alike
    if "piano" in q or "DÉB" in q:
        assert result["people"] == []  # a title is no person's name
    else:
        assert result["people"] == [contract.student_id]


@pytest.mark.parametrize("q", [
    SESSION_ID, "pi_test_zoe", "ch_test_zoe", "cus_test_zoe", "re_test_zoe", "dp_test_zoe",
    "evt_test_zoe", "txn_test_zoe",
    SESSION_ID[-8:],  # the reference on the success page and the receipt
    SESSION_ID[-8:].lower(),  # read back in lower case
])
def test_an_id_finds_the_payment_its_contract_and_both_parties(admin_client, zoe, q):
    contract, payment, other, failed = zoe

    result = found(admin_client, q)

    assert result["payments"] == [payment.id]
    assert result["contracts"] == [contract.id]
    assert set(result["people"]) == {contract.student_id, contract.coach_id}
    assert listed_ids(admin_client, q) == [payment.id]


def test_the_reference_on_the_receipt_is_what_the_search_takes(admin_client, zoe):
    contract, payment, other, failed = zoe
    assert payment.reference == SESSION_ID[-8:]
    assert found(admin_client, f"  {payment.reference}  ")["payments"] == [payment.id]
    # A part of the reference is not a reference: nothing is guessed.
    assert found(admin_client, SESSION_ID[-8:-2])["payments"] == []


def test_an_invoice_number_and_a_manual_reference_find_the_manual_payment(
    app, db, admin_client, admin_user, make_contract, clock
):
    import clock as app_clock
    from payments.manual import record_manual_payment
    from payments.models import Invoice, ManualMethod

    clock.freeze(datetime(2026, 3, 2, 10, tzinfo=UTC))
    contract = make_contract("Zoë Martin", "zoe.martin@example.com", title="Cello")
    with app.test_request_context():  # what it tells the student links to pages
        payment = record_manual_payment(
            contract.id, db.session.merge(admin_user), method=ManualMethod.BANK_TRANSFER,
            reference="BANK-2026-118", received_on=app_clock.now().date(), note="",
        )
        db.session.commit()
    invoice = db.session.scalars(select(Invoice).where(Invoice.payment_id == payment.id)).one()
    assert re.fullmatch(r"CP-2026-\d{6}", invoice.number)

    for q in (invoice.number, invoice.number.lower(),
              f"CP-2026-{invoice.sequence}",  # without the leading zeros
              "bank-2026-118", f"manual-{payment.id}"):
        result = found(admin_client, q)
        assert result["payments"] == [payment.id], q
        assert result["contracts"] == [contract.id], q
        assert contract.student_id in result["people"], q
    assert listed_ids(admin_client, invoice.number) == [payment.id]
    assert found(admin_client, "CP-2026-999999")["payments"] == []


def test_a_contract_number_finds_the_contract_and_its_payments(admin_client, zoe):
    contract, payment, other, failed = zoe
    for q in (str(other.id), f"#{other.id}"):
        result = found(admin_client, q)
        assert result["contracts"] == [other.id]
        assert result["payments"] == [failed.id]
        assert set(result["people"]) == {other.student_id, other.coach_id}


@pytest.mark.ledger_dirty  # a share and its transfer written by hand, not by payouts
def test_a_transfer_and_a_connected_account_find_the_coach_and_contract(db, admin_client, zoe):
    from payouts.models import ConnectedAccount, SessionShare, ShareStatus

    contract, payment, other, failed = zoe
    started = datetime(2026, 11, 25, 9, tzinfo=UTC)
    session_id = add_session(db, contract.id, started, status="completed")
    db.session.add_all([
        ConnectedAccount(user_id=contract.coach_id, stripe_account_id="acct_test_kenji"),
        SessionShare(session_id=session_id, contract_id=contract.id, coach_id=contract.coach_id,
                     number=1, amount=1000, currency=contract.currency,
                     status=ShareStatus.TRANSFERRED, due_at=started + timedelta(days=7),
                     transfer_amount=1000, stripe_transfer_id="tr_test_kenji",
                     source_payment_id=payment.id),
    ])
    db.session.commit()

    by_transfer = found(admin_client, "tr_test_kenji")
    assert by_transfer["contracts"] == [contract.id]
    assert by_transfer["payments"] == [payment.id]
    by_account = found(admin_client, "acct_test_kenji")
    assert by_account["people"] == [contract.coach_id]
    assert by_account["contracts"] == [contract.id]


def test_nothing_found_and_queries_not_searched_say_why(admin_client, zoe):
    def page(q: str) -> str:
        return admin_client.get("/admin/search", query_string={"q": q}).get_data(as_text=True)

    nothing = page("nobody-like-this")
    assert "Nothing matches" in nothing and 'id="search-problem"' not in nothing
    assert found(admin_client, "pi_unknown") == {"people": [], "contracts": [], "payments": []}
    for q, words in (("", "Type a name"), ("zo", "too short"), ("x" * 201, "at most 200"),
                     ("in_1NvXq2", "keeps no Stripe invoices")):
        html = page(q)
        assert 'id="search-problem"' in html and words in html, q
        assert 'id="found-payments"' not in html
    # The payments list says it too, and lists nothing rather than everything.
    html = admin_client.get("/admin/payments/list?q=zo").get_data(as_text=True)
    assert "too short" in html and "data-payment-id" not in html


def test_the_search_box_is_in_every_admin_pages_header(admin_client, zoe):
    contract, payment, other, failed = zoe
    for path in ("/admin/payments", "/admin/payments/list", f"/admin/payments/{payment.id}",
                 f"/admin/contracts/{contract.id}", "/admin/users", "/admin/events",
                 "/admin/refunds", "/admin/audit"):
        html = admin_client.get(path, follow_redirects=True).get_data(as_text=True)
        assert 'id="admin-search-q"' in html, path
    shown = admin_client.get("/admin/search?q=zoe").get_data(as_text=True)
    assert 'value="zoe"' in shown  # the query stays in the box


def test_the_search_is_for_admins_only(client, make_user, zoe):
    from tests.conftest import login

    assert client.get("/admin/search?q=zoe").status_code == 404
    login(client, make_user("student"))
    assert client.get("/admin/search?q=zoe").status_code == 404


def test_the_users_and_contracts_lists_fold_accents_too(admin_client, zoe):
    contract, payment, other, failed = zoe
    users = admin_client.get("/admin/users?q=lefevre").get_data(as_text=True)
    assert f'id="user-{contract.student_id}"' in users
    contracts = admin_client.get("/admin/contracts?q=etude").get_data(as_text=True)
    assert f"contract_id={contract.id}" in contracts or f"/contracts/{contract.id}" in contracts


def test_search_text_follows_a_rename(db, make_user):
    user = make_user("student", name="Zoë Lefèvre", email="zoe@example.com")
    assert user.search_text == "zoe lefevre zoe@example.com"
    user.name = "Zoë Ştefan"
    user.email = "z.stefan@example.com"
    db.session.commit()
    assert user.search_text == "zoe stefan z.stefan@example.com"


@pytest.mark.postgres
def test_postgresql_finds_text_and_references_by_their_indexes(db, zoe):
    """With sequential scans off, each search condition is served by its index: a GIN index
    of trigrams for a part of a text (a B-tree could not find a middle part), a B-tree of
    the ids' last characters for a whole reference."""
    from admin import search_terms
    from payments.models import Payment

    def plan(statement) -> str:
        compiled = statement.compile(db.engine, compile_kwargs={"literal_binds": True})
        with db.engine.connect() as conn:
            conn.execute(text("SET enable_seqscan = off"))
            return "\n".join(row[0] for row in conn.execute(text(f"EXPLAIN {compiled}")))

    from accounts.models import User
    from contracts.models import Contract

    terms = search_terms.read("zoe.student")
    assert "ix_users_search_text_trgm" in plan(select(User.id).where(terms.person_condition()))
    assert "ix_contracts_search_text_trgm" in plan(
        select(Contract.id).where(terms.contract_condition()))
    # The whole printed reference: one look-up in each index of the ids' last characters.
    reference = plan(select(Payment.id).where(
        search_terms.read(SESSION_ID[-8:]).payment_condition()))
    assert "ix_payments_checkout_session_id_end" in reference
    assert "ix_payments_payment_intent_id_end" in reference
    # A longer end of an id: its trigrams.
    assert "ix_payments_checkout_session_id_trgm" in plan(
        select(Payment.id).where(search_terms.read(SESSION_ID[-12:]).payment_condition()))


# --- in Chromium --------------------------------------------------------------------------


@pytest.fixture
def live_url(app):
    from tests.support import serve_in_thread

    with serve_in_thread(app) as url:
        yield url


@pytest.mark.browser
def test_an_admin_types_what_the_customer_quoted_and_opens_the_payment(
    page, live_url, admin_user, zoe
):
    from tests.conftest import PASSWORD
    from tests.support import shot

    contract, payment, other, failed = zoe
    page.goto(f"{live_url}/auth/login")
    page.get_by_label("Email").fill(admin_user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_url}/admin/**")

    # The customer wrote: "I'm zoe, I paid for the piano lessons, reference <ref>".
    box = page.get_by_role("searchbox", name="Search people, contracts and payments")
    box.fill("zoe")
    box.press("Enter")
    page.wait_for_url(f"{live_url}/admin/search?q=zoe")
    people = page.locator("#found-people")
    assert "Zoë Lefèvre" in people.inner_text()
    assert "Interview coaching" not in page.locator("main").inner_text()  # Ana's, not Zoë's
    shot(page, "admin-search-name")

    box = page.get_by_role("searchbox", name="Search people, contracts and payments")
    box.fill(payment.reference)
    page.get_by_role("button", name="Search", exact=True).click()
    found = page.locator("#found-payments")
    assert payment.reference in found.inner_text()
    assert "Étude de piano" in page.locator("#found-contracts").inner_text()
    shot(page, "admin-search-reference")
    found.get_by_role("link", name=f"#{payment.id}").click()
    page.wait_for_url(f"{live_url}/admin/payments/{payment.id}")
    assert SESSION_ID in page.locator("main").inner_text()
