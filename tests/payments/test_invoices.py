"""Invoices: one numbered invoice per payment that counts, numbered per UTC year, no gaps.

Contracts are paid for real at the sandbox through Checkout (or as manual
payments by an admin, where the clock must be moved); the invoice is issued in
the transaction that records the payment.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from tests.conftest import login
from tests.payments.conftest import payments, start_checkout, wait_until_state
from tests.support import at_once, wait_for


@pytest.fixture
def request_context(app):
    """Services link to pages in what they tell people, as they do inside a request."""
    with app.test_request_context():
        yield


def invoices(db, **criteria):
    from payments.models import Invoice

    db.session.expire_all()
    return list(
        db.session.scalars(select(Invoice).filter_by(**criteria).order_by(Invoice.sequence))
    )


def new_contract(db, make_proposal, coach, student, **terms) -> int:
    """Another pending contract between `coach` and `student`; returns its id."""
    from contracts.services import accept_proposal

    proposal_id = make_proposal(coach, student, **terms)
    contract = accept_proposal(proposal_id, db.session.merge(student))
    db.session.commit()
    return contract.id


def pay_at_sandbox(db, client, sandbox, contract_id: int) -> None:
    session_id = start_checkout(client, contract_id)
    assert sandbox.pay(session_id).status_code == 200
    client.get(f"/contracts/{contract_id}/payment-success?session_id={session_id}")
    wait_until_state(db, contract_id, ("active", "paid"))


def pay_manually(db, contract_id: int, admin):
    """An admin records a cash payment of the contract's total; flushed, not committed."""
    import clock
    from payments.manual import record_manual_payment
    from payments.models import ManualMethod

    return record_manual_payment(
        contract_id,
        db.session.merge(admin),
        method=ManualMethod.CASH,
        reference=f"CASH-{contract_id}",
        received_on=clock.now().date(),
        note="",
    )


# --- numbering ---------------------------------------------------------------------


def test_a_paid_contract_has_exactly_one_invoice(db, paid):
    from contracts.models import Contract
    from payments.invoices import issue_invoice

    contract_id, student, coach = paid
    [payment] = payments(db, contract_id)
    [invoice] = invoices(db)
    year = payment.paid_at.astimezone(UTC).year
    assert (invoice.number, invoice.year, invoice.sequence) == (f"CP-{year}-000001", year, 1)
    contract = db.session.get(Contract, contract_id)
    assert (invoice.payment_id, invoice.contract_id) == (payment.id, contract_id)
    assert (invoice.student_id, invoice.coach_id) == (student.id, coach.id)
    assert (invoice.amount, invoice.currency) == (20000, "usd")
    assert (invoice.platform_fee, invoice.coach_earning) == (
        contract.platform_fee, contract.coach_earning)
    assert (invoice.student_name, invoice.student_email) == ("Ana Student", student.email)
    assert (invoice.coach_name, invoice.coach_email) == ("Maya Coach", coach.email)
    assert (invoice.contract_title, invoice.session_count) == ("Interview coaching", 4)

    # Issuing again (a redelivered event, say) returns the same invoice and takes no number.
    again = issue_invoice(payment, paid_before=0)
    db.session.commit()
    assert again.id == invoice.id
    assert [i.number for i in invoices(db)] == [f"CP-{year}-000001"]


def test_a_second_paid_contract_gets_the_next_number(db, paid, student_client, sandbox,
                                                     make_proposal):
    contract_id, student, coach = paid
    second = new_contract(db, make_proposal, coach, student, title="Salary negotiation")
    pay_at_sandbox(db, student_client, sandbox, second)
    year = payments(db, second)[0].paid_at.year
    assert [(i.contract_id, i.number) for i in invoices(db)] == [
        (contract_id, f"CP-{year}-000001"),
        (second, f"CP-{year}-000002"),
    ]


def test_a_duplicate_payment_gets_no_invoice(db, student_client, sandbox, pending_contract):
    from datetime import timedelta

    import clock

    contract_id = pending_contract[0]
    first = start_checkout(student_client, contract_id)
    # Make the first session look too old to reuse, so the next press opens another one.
    [payment] = payments(db, contract_id)
    payment.expires_at = clock.now() + timedelta(minutes=1)
    db.session.commit()
    second = start_checkout(student_client, contract_id)
    assert second != first

    sandbox.pay(first)
    wait_until_state(db, contract_id, ("active", "paid"))
    sandbox.pay(second)
    wait_for(
        lambda: [p for p in payments(db, contract_id) if p.status.value == "refunded"],
        what="the duplicate payment refunded",
    )
    by_session = {p.checkout_session_id: p for p in payments(db, contract_id)}
    assert by_session[second].void_reason.value == "duplicate"
    [invoice] = invoices(db)
    assert invoice.payment_id == by_session[first].id and invoice.sequence == 1


def test_a_void_payment_is_refused(db, paid):
    from payments.invoices import NotInvoiceable, issue_invoice
    from payments.models import Payment, PaymentRecordStatus, VoidReason

    [paid_one] = payments(db, paid[0])
    void = Payment(contract_id=paid[0], amount=20000, currency="usd",
                   status=PaymentRecordStatus.SUCCEEDED, paid_at=paid_one.paid_at,
                   void_reason=VoidReason.DUPLICATE, manual_reference="void")
    db.session.add(void)
    db.session.flush()
    with pytest.raises(NotInvoiceable):
        issue_invoice(void, paid_before=0)
    db.session.rollback()
    assert len(invoices(db)) == 1


def test_numbers_restart_in_a_new_year(db, clock, make_user, make_proposal, admin,
                                       request_context):
    coach, student = make_user("coach"), make_user("student")
    clock.freeze(datetime(2026, 12, 31, 23, 30, tzinfo=UTC))
    december = new_contract(db, make_proposal, coach, student)
    pay_manually(db, december, admin)
    db.session.commit()
    clock.freeze(datetime(2027, 1, 1, 0, 15, tzinfo=UTC))
    january = [new_contract(db, make_proposal, coach, student) for _ in range(2)]
    for contract_id in january:
        pay_manually(db, contract_id, admin)
        db.session.commit()
    assert [(i.contract_id, i.number) for i in invoices(db)] == [
        (december, "CP-2026-000001"),
        (january[0], "CP-2027-000001"),
        (january[1], "CP-2027-000002"),
    ]


def test_a_rolled_back_payment_leaves_no_gap(db, paid, make_proposal, admin, request_context):
    from payments.models import InvoiceCounter

    contract_id, student, coach = paid
    year = payments(db, contract_id)[0].paid_at.year
    dropped, kept = (new_contract(db, make_proposal, coach, student) for _ in range(2))

    taken = pay_manually(db, dropped, admin)
    assert [i.number for i in invoices(db, payment_id=taken.id)] == [f"CP-{year}-000002"]
    db.session.rollback()  # e.g. the request failed after the number was taken

    pay_manually(db, kept, admin)
    db.session.commit()
    assert [(i.contract_id, i.number) for i in invoices(db)] == [
        (contract_id, f"CP-{year}-000001"),
        (kept, f"CP-{year}-000002"),
    ]
    assert payments(db, dropped) == []  # the payment went with its number
    assert db.session.get(InvoiceCounter, year).last_number == 2


def test_a_partial_payment_carries_its_cumulative_share_of_the_split():
    from payments.standing import payment_split

    # The whole total at once: the contract's own split.
    assert payment_split(3001, 20000, 0, 20000) == (3001, 16999)
    # 3001 × 7000 // 20000 = 1050 (1050.35 rounded down); the coach gets the rest.
    assert payment_split(3001, 20000, 0, 7000) == (1050, 5950)
    # The next payments take the fee on all paid so far minus what came before, so the
    # parts of a plan add up to the contract's fee exactly (1050 + 1050 + 901 = 3001).
    assert payment_split(3001, 20000, 7000, 7000) == (1050, 5950)
    assert payment_split(3001, 20000, 14000, 6000) == (901, 5099)
    assert payment_split(3001, 20000, 0, 1) == (0, 1)
    # Beyond the total (an accepted overpayment) no more fee is taken.
    assert payment_split(3001, 20000, 20000, 1) == (0, 1)


# --- the page ------------------------------------------------------------------------


def test_the_student_sees_and_can_print_the_invoice(db, paid, student_client):
    contract_id = paid[0]
    [invoice] = invoices(db)
    [payment] = payments(db, contract_id)
    response = student_client.get(f"/invoices/{invoice.id}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    for expected in (invoice.number, "Coachpact", "Ana Student", "Maya Coach",
                     "Interview coaching", "4 × 60 min", "$200.00", payment.payment_intent_id,
                     "platform fee", "Print"):
        assert expected in html, expected
    # Printing needs no script of ours: the CSP forbids inline scripts.
    assert not re.search(r"<script(?![^>]*\bsrc=)", html) and "onclick" not in html

    # Linked from the Payments page and from the receipt.
    link = f'href="/invoices/{invoice.id}"'
    assert link in student_client.get("/payments").get_data(as_text=True)
    assert link in student_client.get(f"/payments/{payment.id}/receipt").get_data(as_text=True)


def test_an_invoice_never_changes_when_a_user_renames(db, paid, student_client):
    from accounts.models import User

    for user_id, renamed in ((paid[1].id, "Ana Renamed"), (paid[2].id, "Maya Renamed")):
        user = db.session.get(User, user_id)
        user.name, user.email = renamed, f"{renamed.split()[0].lower()}@elsewhere.example"
    db.session.commit()
    [invoice] = invoices(db)
    html = student_client.get(f"/invoices/{invoice.id}").get_data(as_text=True)
    article = html[html.index('id="invoice"'):html.index("</article>")]
    assert "Ana Student" in article and "Maya Coach" in article
    assert "Renamed" not in article and "elsewhere" not in article


def get_as(app, user, url: str):
    """GET `url` as `user` (None: logged out) with a client of its own.

    In a thread of its own, so its requests get their own app context (the test's
    context would share `g`, where the login and CSRF token are cached).
    """

    def visit():
        client = app.test_client()
        if user is not None:
            login(client, user)
        return client.get(url)

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(visit).result()


def test_an_admin_sees_the_invoice(app, db, paid, admin):
    [invoice] = invoices(db)
    response = get_as(app, admin, f"/invoices/{invoice.id}")
    assert response.status_code == 200 and invoice.number in response.get_data(as_text=True)


@pytest.mark.parametrize("who", ["coach", "stranger", "logged out"])
def test_anyone_else_gets_a_404(app, db, paid, make_user, who):
    [invoice] = invoices(db)
    user = {"coach": paid[2], "stranger": make_user("student"), "logged out": None}[who]
    response = get_as(app, user, f"/invoices/{invoice.id}")
    if who == "logged out":
        assert response.status_code == 302 and "/auth/login" in response.headers["Location"]
    else:
        assert response.status_code == 404
    assert invoice.number not in response.get_data(as_text=True)


def test_an_unknown_invoice_is_404(db, paid, student_client):
    assert student_client.get("/invoices/999999").status_code == 404


# --- concurrency -----------------------------------------------------------------------


@pytest.mark.postgres
def test_eight_invoices_at_once_are_numbered_one_to_eight(app, db, pending_contract):
    """Eight payments issue their invoices at the same moment: 1..8, no gap, no duplicate."""
    import clock
    from extensions import db as database
    from payments.invoices import issue_invoice
    from payments.models import Payment, PaymentRecordStatus

    contract_id = pending_contract[0]
    moment = clock.now()
    rows = [
        Payment(contract_id=contract_id, amount=20000, currency="usd",
                status=PaymentRecordStatus.SUCCEEDED, paid_at=moment,
                manual_reference=f"race-{n}")
        for n in range(8)
    ]
    db.session.add_all(rows)
    db.session.commit()
    ids = [p.id for p in rows]

    def issue(payment_id: int) -> str:
        number = issue_invoice(database.session.get(Payment, payment_id), paid_before=0).number
        database.session.commit()
        return number

    numbers = dict(zip(ids, at_once(app, issue, ids), strict=True))
    year = moment.year
    assert sorted(numbers.values()) == [f"CP-{year}-{n:06d}" for n in range(1, 9)]
    stored = invoices(db)
    assert [i.sequence for i in stored] == list(range(1, 9))
    assert sorted(i.payment_id for i in stored) == sorted(ids)
    assert {i.payment_id: i.number for i in stored} == numbers
