"""The migrations build what the models describe; demo data is idempotent."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select

from accounts.models import User
from contracts.models import (
    CoachingSession,
    Contract,
    ContractStatus,
    Proposal,
    ProposalStatus,
    SessionStatus,
)


# SQLite's reflection cannot read an index of an expression (the ends of payments' ids);
# PostgreSQL's can, and compares them.
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based")
def test_models_and_migrations_agree(db):
    # The test database was built by `flask db upgrade` (see conftest.database_uri).
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, db.metadata) == []


def snapshot(db) -> dict:
    return {
        model.__tablename__: sorted(
            tuple(
                str(getattr(row, column.key))
                for column in model.__table__.columns
                if column.key
                not in {"created_at", "updated_at", "paid_at", "responded_at", "marked_at"}
            )
            for row in db.session.scalars(select(model))
        )
        for model in (User, Proposal, Contract, CoachingSession)
    }


def test_demo_data_twice_changes_nothing(runner, db):
    first = runner.invoke(args=["demo-data"])
    assert first.exit_code == 0, first.output
    assert "admin@coachpact.test" in first.output and "coachpact-demo" in first.output
    before = snapshot(db)
    second = runner.invoke(args=["demo-data"])
    assert second.exit_code == 0, second.output
    db.session.expire_all()
    assert snapshot(db) == before
    assert len(before["users"]) == 6


def test_demo_data_covers_every_state(runner, db):
    runner.invoke(args=["demo-data"])
    contract_states = set(db.session.scalars(select(Contract.status)))
    proposal_states = set(db.session.scalars(select(Proposal.status)))
    assert contract_states == set(ContractStatus)
    assert proposal_states == set(ProposalStatus)
    zones = set(db.session.scalars(select(User.timezone).where(User.role == "student")))
    assert len(zones) == 3
    assert db.session.scalar(select(func.count()).select_from(User).filter_by(role="coach")) == 2


def story_contracts(db):
    """The demo's named contracts (not the generated payment history)."""
    from demo import PROPOSALS

    titles = [item.title for item in PROPOSALS]
    return db.session.scalars(select(Contract).where(Contract.title.in_(titles)))


def test_demo_sessions_fit_their_contracts(runner, db):
    runner.invoke(args=["demo-data"])
    for contract in story_contracts(db):
        sessions = db.session.scalars(select(CoachingSession).filter_by(contract_id=contract.id))
        statuses = [s.status for s in sessions]
        if contract.status is ContractStatus.COMPLETED:
            assert statuses == [SessionStatus.COMPLETED] * contract.session_count
        elif contract.status is ContractStatus.ACTIVE:
            assert SessionStatus.SCHEDULED in statuses and SessionStatus.COMPLETED in statuses
            assert len(statuses) < contract.session_count
        else:
            assert statuses == []


def test_paid_demo_contracts_have_the_payment_that_paid_them(runner, db):
    from payments.models import Payment, PaymentRecordStatus

    runner.invoke(args=["demo-data"])
    for contract in story_contracts(db):
        payments = list(db.session.scalars(select(Payment).filter_by(contract_id=contract.id)))
        if contract.paid_at is None:
            assert payments == []
            continue
        (payment,) = payments
        # The total, or on a plan the deposit (all that was paid so far).
        assert (payment.amount, payment.currency) == (contract.amount_paid, contract.currency)
        if contract.plan_instalments is None:
            assert contract.amount_paid == contract.total_amount
        refunded = contract.status is ContractStatus.REFUNDED
        assert payment.status is (
            PaymentRecordStatus.REFUNDED if refunded else PaymentRecordStatus.SUCCEEDED
        )
        assert payment.amount_refunded == (contract.total_amount if refunded else 0)


def test_demo_history_gives_the_admin_console_something_to_show(runner, db):
    from datetime import timedelta

    import clock
    from payments.models import EventStatus, Payment, PaymentRecordStatus, WebhookEvent

    runner.invoke(args=["demo-data"])
    history = list(db.session.scalars(
        select(Payment).where(Payment.checkout_session_id.like("cs_demo_%"))))
    assert len(history) >= 300
    assert {p.currency for p in history} >= {"usd", "eur", "gbp", "jpy"}
    statuses = {p.status for p in history}
    assert statuses >= {PaymentRecordStatus.SUCCEEDED, PaymentRecordStatus.FAILED,
                        PaymentRecordStatus.REFUNDED, PaymentRecordStatus.PARTIALLY_REFUNDED}
    assert any(p.held_for_review for p in history)
    assert min(p.created_at for p in history) < clock.now() - timedelta(days=80)
    counting = (PaymentRecordStatus.SUCCEEDED, PaymentRecordStatus.REFUNDED,
                PaymentRecordStatus.PARTIALLY_REFUNDED)
    by_contract: dict[int, list[Payment]] = {}
    for payment in history:
        by_contract.setdefault(payment.contract_id, []).append(payment)
    for contract_id, payments in by_contract.items():
        contract = db.session.get(Contract, contract_id)
        paid = [p for p in payments if p.status in counting and p.void_reason is None]
        # A paid contract has the one payment that paid it, for its total; others have none.
        assert len(paid) == (1 if contract.paid_at else 0)
        for payment in paid:
            assert (payment.amount, payment.currency) == (contract.total_amount, contract.currency)
    failed = db.session.scalars(select(WebhookEvent).filter_by(status=EventStatus.FAILED)).all()
    assert failed and all(event.last_error for event in failed)


def test_demo_payouts_a_ready_account_with_transfers_and_a_coach_waiting(runner, db):
    from payments.standing import split
    from payouts import ledger
    from payouts.models import ConnectedAccount, SessionShare, ShareStatus

    runner.invoke(args=["demo-data"])
    maya = db.session.scalar(select(User).filter_by(email="maya@coachpact.test"))
    tomas = db.session.scalar(select(User).filter_by(email="tomas@coachpact.test"))
    account = db.session.scalar(select(ConnectedAccount).filter_by(user_id=maya.id))
    assert account.ready and account.charges_enabled and account.requirements_due == []
    assert account.stripe_account_id.startswith("acct_demo_")
    assert db.session.scalar(select(ConnectedAccount).filter_by(user_id=tomas.id)) is None

    shares = list(db.session.scalars(select(SessionShare)))
    mayas = [s for s in shares if s.coach_id == maya.id]
    sent = [s for s in mayas if s.status is ShareStatus.TRANSFERRED]
    assert sent and all(s.stripe_transfer_id.startswith("tr_demo_") for s in sent)
    assert all(s.transferred_at is not None and s.transfer_amount == s.amount for s in sent)
    assert [s.status for s in mayas].count(ShareStatus.HELD) == 1
    tomass = [s for s in shares if s.coach_id == tomas.id]
    assert tomass and {s.status for s in tomass} == {ShareStatus.DUE}
    for share in shares:
        contract = db.session.get(Contract, share.contract_id)
        assert share.amount == split(contract.coach_earning, contract.session_count)[
            share.number - 1]
        session = db.session.get(CoachingSession, share.session_id)
        assert session.status is SessionStatus.COMPLETED and session.contract_id == contract.id
    assert ledger.check() == []

    again = runner.invoke(args=["demo-data"])
    assert again.exit_code == 0, again.output
    db.session.expire_all()
    assert sorted((s.id, s.status, s.amount) for s in db.session.scalars(select(SessionShare))) \
        == sorted((s.id, s.status, s.amount) for s in shares)
    assert db.session.scalar(select(func.count()).select_from(ConnectedAccount)) == 1
