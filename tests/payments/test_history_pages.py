"""The student's Payments page, the printable receipt and the coach's Earnings page.

One small data set, in usd and jpy, with every figure computed by hand below.
The platform fee is pinned at 10% with no minimum, so the splits are round.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import event

from contracts.models import (
    CoachingSession,
    Contract,
    ContractStatus,
    PaymentStatus,
    SessionStatus,
)
from payments.models import ManualMethod, Payment, PaymentRecordStatus, VoidReason
from tests.conftest import login

T0 = datetime(2027, 1, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def app_overrides() -> dict:
    # No Stripe here: every row is written directly. A round fee keeps the sums readable.
    return {"PLATFORM_FEE_PERCENT": Decimal("10"), "PLATFORM_FEE_MINIMUM": Decimal("0")}


@dataclass
class Data:
    coach: object
    other_coach: object
    student: object
    other_student: object
    admin: object
    contracts: dict[str, int]
    payments: dict[str, int]


@pytest.fixture
def data(db, make_user, make_proposal) -> Data:
    """Coach Maya's paid contracts A, B (usd), C, D (jpy); E pending; F another coach's.

    A  usd 4 × 50.00 = 200.00, fee 20.00, earning 180.00; a failed attempt, then a
       payment partly refunded (50.00); sessions: completed, no-show, scheduled.
    B  usd 3 × 33.33 = 99.99, fee 10.00, earning 89.99 (Ben's); a payment refunded 10.01,
       and a duplicate (void) payment refunded in full, which does not count.
    C  jpy 2 × 5000 = 10000, fee 1000, earning 9000; refunded in full after one session.
    D  jpy 3 × 7000 = 21000, fee 2100, earning 18900; paid in cash; all three sessions held.
    E  usd, accepted, not paid: a pending Checkout attempt.
    F  another coach's paid contract with Ben.
    """
    from contracts.services import accept_proposal

    maya = make_user("coach", name="Maya Coach", email="maya@example.com")
    zoe = make_user("coach", name="Zoe Coach", email="zoe@example.com")
    ana = make_user("student", name="Ana Student", email="ana@example.com")
    ben = make_user("student", name="Ben Student", email="ben@example.com")
    admin = make_user("admin", name="Ada Admin", email="ada@example.com")
    terms = {
        "A": (
            maya,
            ana,
            {"title": "Interview prep", "price_per_session": 5000, "session_count": 4},
        ),
        "B": (maya, ben, {"title": "Salary talks", "price_per_session": 3333, "session_count": 3}),
        "C": (
            maya,
            ana,
            {
                "title": "Japanese business etiquette",
                "currency": "jpy",
                "price_per_session": 5000,
                "session_count": 2,
            },
        ),
        "D": (
            maya,
            ana,
            {
                "title": "Presentation skills",
                "currency": "jpy",
                "price_per_session": 7000,
                "session_count": 3,
            },
        ),
        "E": (maya, ana, {"title": "Negotiation", "price_per_session": 4000, "session_count": 2}),
        "F": (
            zoe,
            ben,
            {"title": "Public speaking", "price_per_session": 6000, "session_count": 2},
        ),
    }
    # Every proposal first: make_proposal commits in a session of its own.
    proposal_ids = {key: make_proposal(c, s, **t) for key, (c, s, t) in terms.items()}
    contracts: dict[str, Contract] = {}
    for key, (_coach, student, _terms) in terms.items():
        contracts[key] = accept_proposal(proposal_ids[key], db.session.merge(student))
    db.session.flush()

    def paid(key: str, at: datetime, status=ContractStatus.ACTIVE, payment=PaymentStatus.PAID):
        contract = contracts[key]
        contract.status, contract.payment_status, contract.paid_at = status, payment, at

    paid("A", T0 + timedelta(hours=1), payment=PaymentStatus.PARTIALLY_REFUNDED)
    paid("B", T0 + timedelta(days=4), payment=PaymentStatus.PARTIALLY_REFUNDED)
    paid("C", T0 + timedelta(days=1), ContractStatus.REFUNDED, PaymentStatus.REFUNDED)
    paid("D", T0 + timedelta(days=2), ContractStatus.COMPLETED)
    paid("F", T0 + timedelta(days=5))

    def payment(key: str, name: str, created: datetime, **values) -> Payment:
        contract = contracts[key]
        row = Payment(
            contract_id=contract.id,
            amount=contract.total_amount,
            currency=contract.currency,
            created_at=created,
            **values,
        )
        db.session.add(row)
        rows[name] = row
        return row

    rows: dict[str, Payment] = {}
    payment(
        "A",
        "a_failed",
        T0,
        status=PaymentRecordStatus.FAILED,
        checkout_session_id="cs_test_failed000",
        payment_method_type="card",
        failure_reason="Your card was declined.",
    )
    payment(
        "A",
        "a_paid",
        T0 + timedelta(minutes=50),
        status=PaymentRecordStatus.PARTIALLY_REFUNDED,
        checkout_session_id="cs_test_aaaa1111",
        payment_intent_id="pi_test_aaaa",
        charge_id="ch_test_aaaa",
        payment_method_type="card",
        amount_refunded=5000,
        receipt_url="https://pay.stripe.com/receipts/acct/aaaa",
        paid_at=T0 + timedelta(hours=1),
    )
    payment(
        "C",
        "c_paid",
        T0 + timedelta(days=1),
        status=PaymentRecordStatus.REFUNDED,
        checkout_session_id="cs_test_cccc3333",
        payment_intent_id="pi_test_cccc",
        charge_id="ch_test_cccc",
        payment_method_type="card",
        amount_refunded=10000,
        paid_at=T0 + timedelta(days=1),
    )
    payment(
        "D",
        "d_cash",
        T0 + timedelta(days=2),
        status=PaymentRecordStatus.SUCCEEDED,
        manual_method=ManualMethod.CASH,
        manual_reference="CASH-0042",
        paid_at=T0 + timedelta(days=2),
    )
    payment(
        "E",
        "e_pending",
        T0 + timedelta(days=3),
        status=PaymentRecordStatus.PENDING,
        checkout_session_id="cs_test_eeee5555",
    )
    payment(
        "B",
        "b_paid",
        T0 + timedelta(days=4),
        status=PaymentRecordStatus.PARTIALLY_REFUNDED,
        checkout_session_id="cs_test_bbbb2222",
        payment_method_type="card",
        amount_refunded=1001,
        paid_at=T0 + timedelta(days=4),
    )
    payment(
        "B",
        "b_duplicate",
        T0 + timedelta(days=4, minutes=1),
        status=PaymentRecordStatus.REFUNDED,
        checkout_session_id="cs_test_bbbb9999",
        payment_method_type="card",
        amount_refunded=9999,
        void_reason=VoidReason.DUPLICATE,
        paid_at=T0 + timedelta(days=4, minutes=1),
    )
    payment(
        "F",
        "f_paid",
        T0 + timedelta(days=5),
        status=PaymentRecordStatus.SUCCEEDED,
        checkout_session_id="cs_test_ffff6666",
        payment_method_type="card",
        paid_at=T0 + timedelta(days=5),
    )

    sessions = {
        "A": [SessionStatus.COMPLETED, SessionStatus.NO_SHOW, SessionStatus.SCHEDULED],
        "C": [SessionStatus.COMPLETED],
        "D": [SessionStatus.COMPLETED] * 3,
    }
    slot = T0 + timedelta(days=7)
    for key, statuses in sessions.items():
        contract = contracts[key]
        for status in statuses:
            slot += timedelta(hours=2)
            db.session.add(
                CoachingSession(
                    contract_id=contract.id,
                    coach_id=contract.coach_id,
                    booked_by_id=contract.student_id,
                    starts_at=slot,
                    ends_at=slot + timedelta(hours=1),
                    status=status,
                )
            )
    db.session.commit()
    return Data(
        coach=maya,
        other_coach=zoe,
        student=ana,
        other_student=ben,
        admin=admin,
        contracts={key: contract.id for key, contract in contracts.items()},
        payments={name: row.id for name, row in rows.items()},
    )


@contextmanager
def statements(db) -> Iterator[list[str]]:
    """The SQL statements run inside the block."""
    seen: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def rows_of(html: str, attribute: str) -> list[int]:
    return [int(value) for value in re.findall(rf'<tr {attribute}="(\d+)"', html)]


def row_html(html: str, attribute: str, value: int) -> str:
    match = re.search(rf'<tr {attribute}="{value}">(.*?)</tr>', html, re.S)
    assert match, f"no row {attribute}={value}"
    return match.group(1)


def cell(row: str, column: str) -> str:
    match = re.search(rf'data-col="{column}">(.*?)</td>', row, re.S)
    assert match, f"no column {column}"
    return re.sub(r"<[^>]+>", "", match.group(1)).strip()


# --- the student's Payments page -------------------------------------------------------


def test_payments_page_lists_every_attempt_newest_first(client, data):
    login(client, data.student)
    response = client.get("/payments")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    p = data.payments
    assert rows_of(html, "data-payment") == [
        p["e_pending"],
        p["d_cash"],
        p["c_paid"],
        p["a_paid"],
        p["a_failed"],
    ]
    assert 'id="nav-payments"' in html and 'id="nav-earnings"' not in html

    a_paid = row_html(html, "data-payment", p["a_paid"])
    assert "$200.00" in a_paid and "$50.00" in a_paid  # amount, refunded
    assert f'/contracts/{data.contracts["A"]}"' in a_paid and "Interview prep" in a_paid
    assert "Card" in a_paid and 'data-status="partially_refunded"' in a_paid
    assert f"/payments/{p['a_paid']}/receipt" in a_paid
    assert "https://pay.stripe.com/receipts/acct/aaaa" in a_paid
    assert "10 Jan 2027, 13:00 UTC" in a_paid  # when it was paid, in Ana's zone

    c_paid = row_html(html, "data-payment", p["c_paid"])
    assert c_paid.count("¥10,000") == 2 and 'data-status="refunded"' in c_paid

    d_cash = row_html(html, "data-payment", p["d_cash"])
    assert "¥21,000" in d_cash and "Cash" in d_cash and "CASH-0042" in d_cash
    assert f"/payments/{p['d_cash']}/receipt" in d_cash and "Stripe receipt" not in d_cash

    for unpaid in ("a_failed", "e_pending"):
        row = row_html(html, "data-payment", p[unpaid])
        assert "/receipt" not in row and "Stripe receipt" not in row
    assert "Your card was declined." in row_html(html, "data-payment", p["a_failed"])

    # Nothing of Ben's.
    assert "Salary talks" not in html and "Public speaking" not in html


def test_payments_page_is_one_query_whatever_the_rows(client, db, data):
    login(client, data.student)
    with statements(db) as many:
        client.get("/payments")
    client.submit("/auth/logout")
    login(client, data.other_student)
    with statements(db) as few:
        html = client.get("/payments").get_data(as_text=True)
    assert len(rows_of(html, "data-payment")) == 3  # B's two, F's one
    assert len(many) == len(few)
    assert sum("FROM payments" in sql for sql in many) == 1


def test_a_student_without_payments_sees_an_empty_state(client, make_user):
    login(client, make_user("student"))
    html = client.get("/payments").get_data(as_text=True)
    assert 'id="no-payments"' in html


# --- the receipt -----------------------------------------------------------------------


def test_the_student_gets_a_printable_receipt(client, data):
    login(client, data.student)
    response = client.get(f"/payments/{data.payments['a_paid']}/receipt")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    figures = {
        "receipt-amount": "$200.00",
        "receipt-fee": "$20.00",
        "receipt-coach-share": "$180.00",
        "receipt-refunded": "$50.00",
        "receipt-method": "Card",
        "receipt-reference": "aaaa1111",
        "receipt-date": "10 Jan 2027, 13:00 UTC",
    }
    for element, text in figures.items():
        assert re.search(rf'id="{element}">\s*{re.escape(text)}\s*<', html), element
    assert "Coachpact" in html and "Maya Coach" in html and "Ana Student" in html
    assert "Interview prep" in html and "4 × 60 min" in html
    for stripe_id in ("cs_test_aaaa1111", "pi_test_aaaa", "ch_test_aaaa"):
        assert stripe_id in html
    assert 'id="print-hint"' in html and "cp-no-print" in html
    assert "<script>" not in html.split("</main>")[0].split("<main")[1]


def test_a_manual_payment_has_a_receipt_without_stripe_ids(client, data):
    login(client, data.student)
    html = client.get(f"/payments/{data.payments['d_cash']}/receipt").get_data(as_text=True)
    assert "¥21,000" in html and "¥2,100" in html and "¥18,900" in html
    assert "CASH-0042" in html and 'id="receipt-stripe"' not in html


def test_a_refunded_payment_still_has_its_receipt(client, data):
    login(client, data.student)
    response = client.get(f"/payments/{data.payments['c_paid']}/receipt")
    assert response.status_code == 200
    assert re.search(r'id="receipt-refunded">¥10,000<', response.get_data(as_text=True))


@pytest.mark.parametrize("who", ["coach", "other_student", "other_coach", "admin"])
def test_only_the_student_sees_a_receipt(client, data, who):
    login(client, getattr(data, who))
    assert client.get(f"/payments/{data.payments['a_paid']}/receipt").status_code == 404


@pytest.mark.parametrize("name", ["a_failed", "e_pending"])
def test_no_receipt_for_money_that_never_arrived(client, data, name):
    login(client, data.student)
    assert client.get(f"/payments/{data.payments[name]}/receipt").status_code == 404


def test_no_receipt_for_a_payment_that_does_not_exist(client, data):
    login(client, data.student)
    assert client.get("/payments/999999/receipt").status_code == 404


# --- the coach's Earnings page ---------------------------------------------------------


@pytest.fixture
def refund_rows(db, data) -> None:
    """The succeeded refund behind each refunded payment of the data set.

    The money core counts refunds from their rows (`payments.standing`), as the
    refund services write them; `Payment.amount_refunded` alone is its copy.
    """
    from payments.models import Refund, RefundSource, RefundStatus

    for name, source in (
        ("a_paid", RefundSource.ADMIN),
        ("c_paid", RefundSource.ADMIN),
        ("b_paid", RefundSource.ADMIN),
        ("b_duplicate", RefundSource.DUPLICATE),
    ):
        payment = db.session.get(Payment, data.payments[name])
        db.session.add(
            Refund(
                payment_id=payment.id,
                contract_id=payment.contract_id,
                amount=payment.amount_refunded,
                currency=payment.currency,
                status=RefundStatus.SUCCEEDED,
                source=source,
                stripe_refund_id=f"re_test_{name}",
            )
        )
    db.session.commit()


def test_earnings_per_contract(client, data, refund_rows):
    login(client, data.coach)
    response = client.get("/earnings")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    c = data.contracts
    # Paid contracts only (not E), newest payment first; not Zoe's F.
    assert rows_of(html, "data-contract") == [c["B"], c["D"], c["C"], c["A"]]
    assert 'id="nav-earnings"' in html and 'id="nav-payments"' not in html
    expected = {
        # A: 4 parts of 4500; the 50.00 refund takes 4500 × 5000 // 20000 = 1125 off each
        #    → net 13500, fee 20000 − 5000 − 13500 = 1500; 2 of 4 delivered (completed,
        #    no-show) → 2 × 3375 = 6750.
        "A": ["$200.00", "$15.00", "$50.00", "$135.00", "$67.50", "$67.50"],
        # B: parts 2999, 2999, 3001; 10.01 refunded (the void duplicate does not count)
        #    takes 301 off each (rounded up) → net 8096, fee 9999 − 1001 − 8096 = 902;
        #    nothing delivered.
        "B": ["$99.99", "$9.02", "$10.01", "$80.96", "$0.00", "$80.96"],
        # C: refunded in full after one session → nothing kept: no fee, no earning.
        "C": ["¥10,000", "¥0", "¥10,000", "¥0", "¥0", "¥0"],
        # D: all three sessions held, nothing refunded.
        "D": ["¥21,000", "¥2,100", "—", "¥18,900", "¥18,900", "¥0"],
    }
    columns = ["received", "fee", "refunded", "net_earning", "earned", "to_earn"]
    for key, figures in expected.items():
        row = row_html(html, "data-contract", c[key])
        assert [cell(row, column) for column in columns] == figures, key
    assert 'id="earnings-note"' in html and "pro rata" in html


def test_earnings_totals_per_currency(client, data, refund_rows):
    login(client, data.coach)
    html = client.get("/earnings").get_data(as_text=True)
    totals = {}
    for currency, card in re.findall(r'data-currency="(\w+)">(.*?)</dl>', html, re.S):
        totals[currency] = dict(re.findall(r'data-total="(\w+)">([^<]+)<', card))
    assert totals == {
        "jpy": {
            "net_earning": "¥18,900",
            "received": "¥31,000",
            "fee": "¥2,100",
            "refunded": "¥10,000",
            "earned": "¥18,900",
            "to_earn": "¥0",
        },
        "usd": {
            "net_earning": "$215.96",
            "received": "$299.99",
            "fee": "$24.02",
            "refunded": "$60.01",
            "earned": "$67.50",
            "to_earn": "$148.46",
        },
    }


def test_earnings_read_model_sums(db, data, refund_rows):
    """The same figures in minor units, straight from the read model."""
    from accounts.models import User
    from payments.history import earnings_of

    earnings = earnings_of(db.session.get(User, data.coach.id))
    assert earnings.totals == {
        "jpy": {
            "received": 31000,
            "fee": 2100,
            "net_earning": 18900,
            "refunded": 10000,
            "earned": 18900,
            "to_earn": 0,
        },
        "usd": {
            "received": 29999,
            "fee": 2402,
            "net_earning": 21596,
            "refunded": 6001,
            "earned": 6750,
            "to_earn": 14846,
        },
    }
    # What was received is the fee, the coach's net and what went back, to the unit.
    for sums in earnings.totals.values():
        assert sums["received"] == sums["fee"] + sums["net_earning"] + sums["refunded"]


def test_earnings_page_is_one_query_whatever_the_contracts(client, db, data):
    login(client, data.coach)
    with statements(db) as many:
        client.get("/earnings")
    client.submit("/auth/logout")
    login(client, data.other_coach)
    with statements(db) as few:
        html = client.get("/earnings").get_data(as_text=True)
    assert rows_of(html, "data-contract") == [data.contracts["F"]]
    assert len(many) == len(few)
    assert sum("FROM contracts" in sql for sql in many) == 1


def test_a_coach_without_paid_contracts_sees_an_empty_state(client, make_user):
    login(client, make_user("coach"))
    assert 'id="no-earnings"' in client.get("/earnings").get_data(as_text=True)


# --- who may see what ------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/payments", "/earnings", "/payments/1/receipt"])
def test_anonymous_visitors_are_sent_to_log_in(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert "/auth/login" in response.headers["Location"]


@pytest.mark.parametrize(
    ("url", "who"),
    [
        ("/payments", "coach"),
        ("/payments", "admin"),
        ("/earnings", "student"),
        ("/earnings", "admin"),
    ],
)
def test_a_page_for_another_role_does_not_exist(client, data, url, who):
    login(client, getattr(data, who))
    assert client.get(url).status_code == 404
