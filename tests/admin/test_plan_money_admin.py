"""The admin console's money figures on a payment plan, and failure messages on failures only.

A $1,000.00 plan (4 sessions at $250.00, a 10 % fee: $100.00 for the platform, $900.00 for
the coach) paid offline: a 25 % deposit of $250.00, then instalments of $250.00. Each
payment's fee and earning are its invoice's (the cumulative split of
`payments.standing.payment_split`): $25.00 and $225.00 each here. Fees and earnings add
up to the gross of the payments that count, never more.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html import unescape

import pytest
from sqlalchemy import select

NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def app_overrides():
    return {"PLATFORM_FEE_PERCENT": Decimal("10"), "PLATFORM_FEE_MINIMUM": Decimal("0")}


@pytest.fixture
def plan(clock, make_plan_contract, admin_user, record_plan_deposit):
    """The $1,000.00 plan with its deposit recorded today: (contract id, deposit id)."""
    clock.freeze(NOW)
    contract_id, _student, _coach = make_plan_contract(25000)
    return contract_id, record_plan_deposit(contract_id, admin_user)


def pay_instalment(app, db, contract_id: int, admin, number: int) -> None:
    from payments.models import PaymentPlan
    from payments.plans import record_manual_instalment

    plan = db.session.scalar(select(PaymentPlan).where(PaymentPlan.contract_id == contract_id))
    instalment = next(i for i in plan.instalments if i.number == number)
    with app.test_request_context():
        record_manual_instalment(instalment.id, db.session.merge(admin), reference=f"I-{number}")
        db.session.commit()


def invoice_of(db, payment_id: int):
    from payments.models import Invoice

    return db.session.scalar(select(Invoice).where(Invoice.payment_id == payment_id))


def text_of(html: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"[^>]*>([^<]*)', html)
    assert match, f"no #{element_id} on the page"
    return " ".join(unescape(match.group(1)).split())


# --- the dashboard ----------------------------------------------------------------------


def test_a_plan_deposit_counts_its_own_fee_and_earning(db, plan):
    from admin.analytics import figures_by_day

    contract_id, deposit_id = plan
    invoice = invoice_of(db, deposit_id)
    assert (invoice.platform_fee, invoice.coach_earning) == (2500, 22500)
    [day] = figures_by_day(NOW.date(), NOW.date())
    assert (day.gross, day.fees, day.earnings) == (25000, 2500, 22500)
    assert day.fees == invoice.platform_fee and day.fees + day.earnings == day.gross


def test_fees_and_earnings_add_up_to_the_gross_as_a_plan_is_paid(app, db, plan, admin_user,
                                                                 clock):
    from admin.analytics import dashboard, figures_by_day, rollup
    from payments.models import Invoice

    contract_id, _deposit_id = plan
    clock.freeze(NOW + timedelta(days=1))
    pay_instalment(app, db, contract_id, admin_user, 1)
    clock.freeze(NOW + timedelta(days=2))

    live = dashboard(NOW.date(), NOW.date() + timedelta(days=1)).currency("usd")
    invoices = db.session.scalars(select(Invoice).where(Invoice.contract_id == contract_id)).all()
    assert (live.gross, live.fees, live.earnings) == (50000, 5000, 45000)
    assert live.fees == sum(i.platform_fee for i in invoices)
    assert live.earnings == sum(i.coach_earning for i in invoices)

    # The nightly rollup stores the same figures for the closed days.
    assert rollup(NOW.date(), NOW.date() + timedelta(days=2)) == 2
    db.session.commit()
    stored = dashboard(NOW.date(), NOW.date() + timedelta(days=1))
    assert stored.stored_days is not None
    assert (stored.currency("usd").fees, stored.currency("usd").earnings) == (5000, 45000)
    for day in figures_by_day(NOW.date(), NOW.date() + timedelta(days=1)):
        assert day.fees + day.earnings == day.gross


def test_the_page_shows_the_fee_on_the_deposit(admin_client, plan):
    html = admin_client.get("/admin/payments?range=today").get_data(as_text=True)
    assert text_of(html, "gross-usd") == "$250.00"
    assert text_of(html, "fees-usd") == "$25.00"
    assert text_of(html, "earnings-usd") == "$225.00"


def test_a_payment_from_before_invoices_takes_its_share_of_the_fee(db, clock, make_user,
                                                                   make_proposal):
    """Old history has no invoice: the fee is the contract's on the payment's part of the
    total, rounded down, in 64 bits (amounts this large overflow a 32-bit product)."""
    from admin.analytics import figures_by_day
    from contracts.services import accept_proposal
    from payments.models import Payment, PaymentRecordStatus

    clock.freeze(NOW)
    coach, student = make_user("coach"), make_user("student")
    contract = accept_proposal(
        make_proposal(coach, student, price_per_session=10_000_000, session_count=4),
        db.session.merge(student),
    )
    db.session.commit()
    assert (contract.total_amount, contract.platform_fee) == (40_000_000, 4_000_000)
    for amount in (10_000_001, 29_999_999):
        db.session.add(Payment(contract_id=contract.id, amount=amount, currency="usd",
                               status=PaymentRecordStatus.SUCCEEDED, paid_at=NOW))
    db.session.commit()
    [day] = figures_by_day(NOW.date(), NOW.date())
    # 4,000,000 × 10,000,001 ÷ 40,000,000 = 1,000,000.1 and × 29,999,999 = 2,999,999.9: down.
    assert (day.gross, day.fees) == (40_000_000, 1_000_000 + 2_999_999)
    assert day.fees + day.earnings == day.gross


# --- top failure reasons: failed payments only -----------------------------------------


def test_top_failure_reasons_count_failed_payments_only(db, plan):
    from admin.analytics import failure_reasons
    from payments.models import Payment, PaymentRecordStatus

    contract_id, deposit_id = plan
    # Rows from before settling cleared a decline met on the way: paid, or still open.
    db.session.get(Payment, deposit_id).failure_reason = "Your card was declined."
    for status, reason in (
        (PaymentRecordStatus.FAILED, "Your card has insufficient funds."),
        (PaymentRecordStatus.FAILED, "Your card has insufficient funds."),
        (PaymentRecordStatus.FAILED, "Your card has expired."),
        (PaymentRecordStatus.PENDING, "Your card was declined."),
    ):
        db.session.add(Payment(contract_id=contract_id, amount=25000, currency="usd",
                               status=status, failure_reason=reason))
    db.session.commit()
    assert failure_reasons(NOW.date(), NOW.date()) == [
        ("Your card has insufficient funds.", 2),
        ("Your card has expired.", 1),
    ]


def test_the_payment_page_shows_a_failure_on_a_failed_payment_only(admin_client, db, plan):
    from payments.models import Payment, PaymentRecordStatus

    contract_id, deposit_id = plan
    db.session.get(Payment, deposit_id).failure_reason = "Your card was declined."
    failed = Payment(contract_id=contract_id, amount=25000, currency="usd",
                     status=PaymentRecordStatus.FAILED,
                     failure_reason="Your card has insufficient funds.")
    db.session.add(failed)
    db.session.commit()

    paid = admin_client.get(f"/admin/payments/{deposit_id}").get_data(as_text=True)
    facts = re.search(r'<dl[^>]*id="payment-facts">(.*?)</dl>', paid, re.S).group(1)
    assert "Failure" not in facts and "Your card was declined." not in facts
    html = admin_client.get(f"/admin/payments/{failed.id}").get_data(as_text=True)
    facts = re.search(r'<dl[^>]*id="payment-facts">(.*?)</dl>', html, re.S).group(1)
    assert "<dt class=\"col-5\">Failure</dt>" in facts
    assert "Your card has insufficient funds." in facts


# --- the payouts page: platform fees on what arrived -------------------------------------


def test_platform_fees_are_the_fee_on_what_arrived(app, admin_client, db, plan, admin_user):
    from admin.payout_views import platform_fees

    contract_id, _deposit_id = plan
    assert platform_fees() == {"usd": 2500}  # not the contract's 10,000
    html = admin_client.get("/admin/payouts").get_data(as_text=True)
    assert text_of(html, "fees-usd") == "$25.00"

    pay_instalment(app, db, contract_id, admin_user, 1)
    assert platform_fees() == {"usd": 5000}
