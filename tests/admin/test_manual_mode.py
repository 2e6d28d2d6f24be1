"""Coachpact without Stripe (PAYMENTS_MODE=manual): students pay offline as the pay page
explains, admins record the payments, a plan's deposit and instalments included."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.conftest import login


@pytest.fixture
def app_overrides():
    # Nothing listens on port 9: any call to Stripe would fail the test loudly.
    return {"PAYMENTS_MODE": "manual", "STRIPE_API_BASE": "http://127.0.0.1:9",
            "STRIPE_MAX_NETWORK_RETRIES": 0}


@pytest.fixture
def contract(make_plan_contract):
    """A pending $400.00 contract (4 × $100.00) offering a 25 % deposit and 3 instalments."""
    return make_plan_contract(10000)[:2]


def test_the_pay_page_explains_how_to_pay_offline_and_charges_nothing(app, client, db, contract):
    from payments.models import Payment

    contract_id, student = contract
    login(client, student)
    page = client.get(f"/contracts/{contract_id}/pay").get_data(as_text=True)
    assert 'id="pay-offline"' in page and "bank transfer" in page
    assert f"contract #{contract_id}" in page
    assert 'id="pay-button"' not in page and "plan-3" not in page
    refused = client.submit(f"/contracts/{contract_id}/pay", {"plan": "full"},
                            follow_redirects=True)
    assert "bank transfer" in refused.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Payment)) == 0


def test_an_admin_records_a_plan_deposit_then_an_instalment(db, client, contract, make_user):
    from contracts.models import Contract
    from payments import plans
    from payments.models import Instalment

    contract_id, _ = contract
    login(client, make_user("admin", name="Ada Admin"))
    form = client.get(f"/admin/contracts/{contract_id}/manual-payment").get_data(as_text=True)
    assert "The deposit of a plan of 3 instalments: $100.00" in form
    response = client.submit_confirmed(f"/admin/contracts/{contract_id}/manual-payment", {
        "method": "bank_transfer", "reference": "TR-100", "received_on": "2026-11-20",
        "note": "", "instalments": "3"})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    db.session.expire_all()
    paid = db.session.get(Contract, contract_id)
    assert (paid.status.value, paid.payment_status.value, paid.amount_paid) == (
        "active", "partially_paid", 10000)
    assert paid.sessions_unlocked == 1
    plan = plans.plan_of(contract_id)
    first = db.session.scalar(select(Instalment).filter_by(plan_id=plan.id, number=1))
    # Nothing is ever charged without Stripe: the periodic job leaves due instalments alone.
    plans.charge_due_instalments()
    response = client.submit_confirmed(f"/admin/contracts/{contract_id}/plan/record-payment", {
        "instalment_id": str(first.id), "reference": "TR-101", "note": ""})
    assert response.status_code == 302
    db.session.expire_all()
    paid = db.session.get(Contract, contract_id)
    assert (paid.amount_paid, paid.sessions_unlocked) == (20000, 2)
    assert db.session.get(Instalment, first.id).status.value == "paid"
