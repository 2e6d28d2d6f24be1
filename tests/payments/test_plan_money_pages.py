"""What a payment plan's money looks like to the student and the coach, from the money core.

A $1,000.00 plan (4 sessions at $250.00, a 10 % fee: $100.00 for the platform, $900.00
for the coach) paid offline by an admin: a 25 % deposit of $250.00, then 3 instalments of
$250.00. The deposit's invoice carries the fee on the deposit, $25.00, and the coach's
$225.00; the pages show that, never the contract's whole split.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tests.conftest import login

NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def app_overrides() -> dict:
    # No Stripe: every payment is recorded offline. A round fee keeps the figures readable.
    return {"PLATFORM_FEE_PERCENT": Decimal("10"), "PLATFORM_FEE_MINIMUM": Decimal("0")}


@pytest.fixture
def admin(make_user):
    return make_user("admin", name="Ada Admin")


@pytest.fixture
def plan(db, clock, make_plan_contract, admin, record_plan_deposit):
    """The $1,000.00 plan with its deposit recorded: (contract id, student, coach, deposit)."""
    from contracts.models import Contract

    clock.freeze(NOW)
    contract_id, student, coach = make_plan_contract(25000)
    contract = db.session.get(Contract, contract_id)
    assert (contract.total_amount, contract.platform_fee, contract.coach_earning) == (
        100000, 10000, 90000)
    deposit_id = record_plan_deposit(contract_id, admin)
    return contract_id, student, coach, deposit_id


def earnings_row(client, contract_id: int) -> dict[str, str]:
    html = client.get("/earnings").get_data(as_text=True)
    row = re.search(rf'<tr data-contract="{contract_id}">(.*?)</tr>', html, re.S)
    assert row, "no row for the contract"
    return {
        column: re.sub(r"<[^>]+>", "", value).strip()
        for column, value in re.findall(r'data-col="(\w+)">(.*?)</td>', row.group(1), re.S)
    }


def test_a_plan_with_its_deposit_paid_earns_on_the_deposit(client, db, plan):
    from accounts.models import User
    from payments.history import earnings_of

    contract_id, _student, coach, _deposit = plan
    login(client, coach)
    # Received 250.00: the platform's fee on it is 25.00, the coach's part 225.00, none
    # of it earned yet (no session delivered); never the contract's 900.00.
    assert earnings_row(client, contract_id) == {
        "received": "$250.00",
        "fee": "$25.00",
        "refunded": "—",
        "net_earning": "$225.00",
        "earned": "$0.00",
        "to_earn": "$225.00",
    }
    [row] = earnings_of(db.session.get(User, coach.id)).contracts
    assert (row.received, row.fee, row.net_earning) == (25000, 2500, 22500)


def test_each_instalment_adds_its_part_of_the_earning(app, client, db, plan, admin):
    from payments.models import PaymentPlan
    from payments.plans import record_manual_instalment

    contract_id, _student, coach, _deposit = plan
    first = db.session.query(PaymentPlan).filter_by(contract_id=contract_id).one().instalments
    instalment = next(i for i in first if i.number == 1)
    with app.test_request_context():
        record_manual_instalment(instalment.id, db.session.merge(admin), reference="INST-1")
        db.session.commit()

    login(client, coach)
    row = earnings_row(client, contract_id)
    assert (row["received"], row["fee"], row["net_earning"]) == ("$500.00", "$50.00", "$450.00")


def test_a_contract_refunded_in_full_earns_nothing(app, client, db, clock, make_proposal,
                                                    make_user, admin):
    from contracts.services import accept_proposal
    from payments.manual import record_manual_payment
    from payments.models import ManualMethod
    from payments.refunds import refund_contract

    clock.freeze(NOW)
    coach, student = make_user("coach"), make_user("student")
    contract = accept_proposal(make_proposal(coach, student, price_per_session=5000),
                               db.session.merge(student))
    db.session.commit()
    with app.test_request_context():
        record_manual_payment(contract.id, db.session.merge(admin), method=ManualMethod.CASH,
                              reference="CASH-1", received_on=NOW.date(), note="")
        db.session.commit()
    login(client, coach)
    assert earnings_row(client, contract.id)["net_earning"] == "$180.00"

    with app.test_request_context():
        refund_contract(contract.id, db.session.merge(admin), amount=20000, note="Goodwill")
        db.session.commit()
    assert earnings_row(client, contract.id) == {
        "received": "$200.00",
        "fee": "$0.00",
        "refunded": "$200.00",
        "net_earning": "$0.00",
        "earned": "$0.00",
        "to_earn": "$0.00",
    }


def test_a_plan_deposit_refunded_in_full_earns_nothing(app, client, db, plan, admin):
    from payments.refunds import refund_contract

    contract_id, _student, coach, _deposit = plan
    with app.test_request_context():
        refund_contract(contract_id, db.session.merge(admin), amount=25000, note="Goodwill")
        db.session.commit()
    login(client, coach)
    row = earnings_row(client, contract_id)
    assert (row["received"], row["refunded"]) == ("$250.00", "$250.00")
    assert (row["fee"], row["net_earning"], row["to_earn"]) == ("$0.00", "$0.00", "$0.00")


def test_the_deposit_receipt_shows_the_deposits_own_split(client, db, plan):
    from payments.models import Invoice

    contract_id, student, _coach, deposit_id = plan
    invoice = db.session.query(Invoice).filter_by(payment_id=deposit_id).one()
    assert (invoice.platform_fee, invoice.coach_earning) == (2500, 22500)
    login(client, student)
    html = client.get(f"/payments/{deposit_id}/receipt").get_data(as_text=True)
    assert re.search(r'id="receipt-amount">\$250\.00<', html)
    assert re.search(r'id="receipt-fee">\$25\.00<', html)
    assert re.search(r'id="receipt-coach-share">\$225\.00<', html)
    assert "$100.00" not in html and "$900.00" not in html


def test_a_failure_message_shows_on_failed_payments_only(client, db, plan):
    from payments.models import Payment, PaymentRecordStatus

    contract_id, student, _coach, deposit_id = plan
    # Rows recorded before settling cleared an earlier decline keep it on a paid payment.
    db.session.get(Payment, deposit_id).failure_reason = "Your card was declined."
    failed = Payment(contract_id=contract_id, amount=25000, currency="usd",
                     status=PaymentRecordStatus.FAILED, checkout_session_id="cs_test_plan_failed",
                     failure_reason="Your card has insufficient funds.")
    db.session.add(failed)
    db.session.commit()
    login(client, student)

    mine = client.get("/payments").get_data(as_text=True)
    paid_row = re.search(rf'<tr data-payment="{deposit_id}">(.*?)</tr>', mine, re.S).group(1)
    failed_row = re.search(rf'<tr data-payment="{failed.id}">(.*?)</tr>', mine, re.S).group(1)
    assert "declined" not in paid_row and "cp-reason" not in paid_row
    assert "Your card has insufficient funds." in failed_row

    history = client.get(f"/contracts/{contract_id}/payments").get_data(as_text=True)
    assert "Your card was declined." not in history
    assert "declined try" not in history and "attempt-earlier-decline" not in history
    assert (
        '<div class="small text-danger attempt-error">Your card has insufficient funds.</div>'
    ) in history
