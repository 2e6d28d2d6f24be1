"""Fixtures of the scheduling suites: a clock frozen at `start`, a coach in Berlin and a
student in New York (a module overrides any of them), and paid contracts between them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

import clock as app_clock
from contracts.models import ContractStatus, PaymentStatus

# A Monday, two weeks before the United States change to summer time (Sunday 14 March
# 2027) and four before Europe's (Sunday 28 March 2027).
START = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def start() -> datetime:
    return START


@pytest.fixture(autouse=True)
def clock(clock, start):
    """Every test starts at `start`; `clock.freeze(moment)` travels."""
    clock.freeze(start)
    return clock


@pytest.fixture
def coach(make_user):
    return make_user("coach", email="maya@example.com", name="Maya Coach", timezone="Europe/Berlin")


@pytest.fixture
def student(make_user):
    return make_user(
        "student", email="kenji@example.com", name="Kenji Sato", timezone="America/New_York"
    )


# The payment state real payments would leave a contract in each status with.
PAID_AT = {
    ContractStatus.PENDING: (PaymentStatus.PENDING, False),
    ContractStatus.ACTIVE: (PaymentStatus.PAID, True),
    ContractStatus.PAST_DUE: (PaymentStatus.PARTIALLY_PAID, True),
    ContractStatus.COMPLETED: (PaymentStatus.PAID, True),
    ContractStatus.CANCELLED: (PaymentStatus.PENDING, False),
    ContractStatus.REFUNDED: (PaymentStatus.REFUNDED, True),
    ContractStatus.DISPUTED: (PaymentStatus.DISPUTED, True),
}


@pytest.fixture
def make_contract(db, make_proposal, coach, student):
    """make_contract(status="active", coach_=, student_=, **terms) → the id of a contract
    between `coach` and `student` (or the given ones), paid now when its status says so."""
    from contracts.services import accept_proposal

    def make(status: str = "active", *, coach_=None, student_=None, **terms) -> int:
        student_ = student_ or student
        proposal_id = make_proposal(coach_ or coach, student_, **terms)
        contract = accept_proposal(proposal_id, db.session.merge(student_))
        contract.status = ContractStatus(status)
        contract.payment_status, paid = PAID_AT[contract.status]
        contract.paid_at = app_clock.now() if paid else None
        contract.amount_paid = contract.total_amount if paid else 0
        db.session.commit()
        return contract.id

    return make


@pytest.fixture
def contract_id(make_contract) -> int:
    """An active, paid contract of 4 sessions of 60 minutes."""
    return make_contract()
