"""Payouts at the sandbox: a paid contract, its coach's connected account, delivered sessions,
and the payout jobs run through their real periodic path."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from tests.payments.conftest import *  # noqa: F403 (the sandbox, a paid contract, an admin)
from tests.support import wait_for

START = datetime(2027, 5, 3, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def request_context(app):
    """Services link to pages in what they tell people, as they do inside a request."""
    with app.test_request_context():
        yield


def deliver_sessions(db, clock, contract_id: int, coach, first, count: int = 1,
                     status: str = "completed") -> list[int]:
    """Book `count` sessions a day apart from `first` (the clock moved to the day before)
    and mark each `status` just after it starts; their ids. The clock stays there."""
    from contracts.models import SessionStatus
    from scheduling import sessions

    clock.freeze(first - timedelta(days=1))
    ids = []
    for day in range(count):
        session = sessions.book_session(contract_id, db.session.merge(coach),
                                          starts_at=first + timedelta(days=day))
        db.session.commit()
        ids.append(session.id)
    for day, session_id in enumerate(ids):
        clock.freeze(first + timedelta(days=day, minutes=50))
        sessions.mark_session(session_id, db.session.merge(coach), SessionStatus(status))
        db.session.commit()
    return ids


@pytest.fixture
def deliver(db, clock, paid):
    """deliver(n): book n sessions of the paid contract a day apart from START and mark
    them completed just after they start; returns their ids. The clock stays there."""
    contract_id, _, coach = paid
    booked: list[int] = []

    def run(count: int, status: str = "completed") -> list[int]:
        first = START + timedelta(days=len(booked))
        ids = deliver_sessions(db, clock, contract_id, coach, first, count, status)
        booked.extend(ids)
        return ids

    return run


def wait_until_ready(db, account_id: str) -> None:
    """Wait for the account's `account.updated` to reach the app and make it ready."""
    from payouts.models import ConnectedAccount

    def ready() -> bool:
        db.session.expire_all()
        row = db.session.scalar(select(ConnectedAccount).filter_by(
            stripe_account_id=account_id))
        return row is not None and row.ready

    wait_for(ready, 10, f"account {account_id} to be ready")


def onboard_coach(db, sandbox, coach) -> str:
    """The coach connects an account and completes onboarding at the sandbox; its id, once
    the app has it ready."""
    from payouts import accounts

    account_id = accounts.connect_account(db.session.merge(coach)).stripe_account_id
    db.session.commit()
    response = sandbox.tool(f"accounts/{account_id}/onboard")
    assert response.status_code == 200, response.text
    wait_until_ready(db, account_id)
    return account_id


@pytest.fixture
def connected(db, paid):
    """The paid contract's coach with a connected account made at the sandbox (not onboarded)."""
    from payouts import accounts

    coach = paid[2]
    account = accounts.connect_account(db.session.merge(coach))
    return account.stripe_account_id


@pytest.fixture
def onboard(db, sandbox, paid):
    """onboard(account id): complete onboarding at the sandbox; its account.updated event
    reaches the webhook and the account is ready."""

    def run(account_id: str) -> None:
        response = sandbox.tool(f"accounts/{account_id}/onboard")
        assert response.status_code == 200, response.text
        wait_until_ready(db, account_id)

    return run


@pytest.fixture
def ready_account(connected, onboard):
    onboard(connected)
    return connected


def run_payouts(db) -> None:
    """One run of the payout jobs, as the consumer runs them each minute."""
    from payouts.shares import make_session_shares
    from payouts.transfers import transfer_due_shares

    db.session.commit()
    make_session_shares.call_local()
    transfer_due_shares.call_local()
    db.session.expire_all()


def shares(db, contract_id: int):
    from payouts.shares import shares_of_contract

    db.session.expire_all()
    return shares_of_contract(contract_id)


SETTLING = timedelta(days=2)  # the sandbox's default delay before a charge's money is available


def settle_funds(sandbox, after: timedelta = SETTLING) -> None:
    """Move the sandbox's clock on until the charges' money is available (and with it what
    was transferred from them to the coach)."""
    response = sandbox.tool("clock", advance_seconds=int(after.total_seconds()))
    assert response.status_code == 200, response.text


def stripe_transfers(sandbox, account_id: str | None = None) -> list[dict]:
    import requests

    from tests.payments.conftest import API_KEY

    params = {"limit": 100, **({"destination": account_id} if account_id else {})}
    response = requests.get(f"{sandbox.url}/v1/transfers", params=params, timeout=10,
                            headers={"Authorization": f"Bearer {API_KEY}"})
    assert response.status_code == 200, response.text
    return response.json()["data"]
