"""The app and the Stripe sandbox, both served over HTTP and wired to each other.

The app reaches the sandbox through the real SDK (only the API base changed);
the sandbox delivers signed webhooks to the app's real endpoint.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import stripe
from sqlalchemy import select

from tests.conftest import login
from tests.support import Switch, serve_in_thread, wait_for

API_KEY = "sk_test_payments_suite"
WEBHOOK_SECRET = "whsec_payments_suite_secret"
CONNECT_WEBHOOK_SECRET = "whsec_payments_suite_connect_secret"
CARD_OK = "4242424242424242"


@pytest.fixture(scope="session")
def sandbox_server():
    switch = Switch()
    with serve_in_thread(switch) as url:
        yield switch, url


@pytest.fixture(scope="session")
def app_server():
    switch = Switch()
    with serve_in_thread(switch) as url:
        yield switch, url


def stripe_settings(sandbox_url: str) -> dict[str, Any]:
    """The app's Stripe settings for the sandbox at `sandbox_url`."""
    return {
        "STRIPE_API_BASE": sandbox_url,
        "STRIPE_SECRET_KEY": API_KEY,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_CONNECT_WEBHOOK_SECRET": CONNECT_WEBHOOK_SECRET,
        "STRIPE_MAX_NETWORK_RETRIES": 0,
    }


@pytest.fixture
def app_overrides(sandbox_server):
    return stripe_settings(sandbox_server[1])


@pytest.fixture
def sandbox_knobs() -> dict[str, Any]:
    return {}


@dataclass
class Sandbox:
    url: str

    def pay(self, session_id: str, **form: str) -> requests.Response:
        form.setdefault("email", "student@example.com")
        if "bank_account" not in form:
            form.setdefault("card_number", CARD_OK)
        return requests.post(
            f"{self.url}/_sandbox/checkout/sessions/{session_id}/pay", data=form, timeout=10
        )

    def tool(self, path: str, **data: Any) -> requests.Response:
        return requests.post(f"{self.url}/_sandbox/{path}", data=data, timeout=10)

    def configure(self, **knobs: Any) -> None:
        response = requests.post(f"{self.url}/_sandbox/config", json=knobs, timeout=10)
        assert response.status_code == 200, response.text

    def events(self, type_: str | None = None, account: str | None = None
               ) -> list[dict[str, Any]]:
        """The platform's events, or with `account` that connected account's; oldest first."""
        params = {"limit": 100, **({"type": type_} if type_ else {})}
        headers = {"Authorization": f"Bearer {API_KEY}",
                   **({"Stripe-Account": account} if account else {})}
        response = requests.get(f"{self.url}/v1/events", params=params, timeout=10,
                                headers=headers)
        assert response.status_code == 200, response.text
        return list(reversed(response.json()["data"]))  # oldest first


@pytest.fixture
def live_url(app, app_server):
    switch, url = app_server
    switch.target = app
    yield url
    switch.target = None


@pytest.fixture
def sandbox(tmp_path, sandbox_server, live_url, sandbox_knobs):
    from sandbox import create_app

    sandbox_app = create_app(
        {
            "SANDBOX_DB": str(tmp_path / "sandbox.sqlite3"),
            "SANDBOX_WEBHOOK_URLS": f"{live_url}/webhooks/stripe",
            "SANDBOX_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "SANDBOX_CONNECT_WEBHOOK_URLS": f"{live_url}/webhooks/stripe/connect",
            "SANDBOX_CONNECT_WEBHOOK_SECRET": CONNECT_WEBHOOK_SECRET,
            "SANDBOX_RETRY_SCHEDULE": "0.2,0.4,0.8,1.6",
            "SANDBOX_WEBHOOK_TIMEOUT": "5",
            "SANDBOX_ASYNC_SETTLE_SECONDS": "600",
            **sandbox_knobs,
        }
    )
    switch, url = sandbox_server
    switch.target = sandbox_app
    try:
        yield Sandbox(url=url)
    finally:
        sandbox_app.extensions["sandbox"].close()
        switch.target = None


def sign(payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """A Stripe-Signature header for `payload`, computed as Stripe computes it."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def deliver(client, event: dict[str, Any], *, connect: bool = False, **sign_kwargs: Any):
    """POST a signed event to the app's webhook, as Stripe would: the platform's endpoint,
    or with `connect` the Connect endpoint (signed with its secret unless told)."""
    payload = json.dumps(event).encode()
    if connect:
        sign_kwargs.setdefault("secret", CONNECT_WEBHOOK_SECRET)
    return client.post(
        "/webhooks/stripe/connect" if connect else "/webhooks/stripe",
        data=payload,
        content_type="application/json",
        headers={"Stripe-Signature": sign(payload, **sign_kwargs)},
    )


@pytest.fixture
def pending_contract(db, make_user, make_proposal):
    """A pending usd contract; returns (contract id, student, coach)."""
    from contracts.services import accept_proposal

    coach = make_user("coach", name="Maya Coach")
    student = make_user("student", name="Ana Student")
    proposal_id = make_proposal(coach, student, price_per_session=5000, session_count=4)
    contract = accept_proposal(proposal_id, db.session.merge(student))
    db.session.commit()
    return contract.id, student, coach


@pytest.fixture
def student_client(client, pending_contract):
    login(client, pending_contract[1])
    return client


@pytest.fixture
def paid(db, student_client, sandbox, pending_contract):
    """`pending_contract` (4 sessions at $50.00) paid by card through Checkout at the sandbox.

    The return page fulfils it, as it does when a webhook is slow, so it holds with
    the sandbox's events held too. Returns (contract id, student, coach).
    """
    contract_id = pending_contract[0]
    session_id = start_checkout(student_client, contract_id)
    assert sandbox.pay(session_id).status_code == 200
    student_client.get(f"/contracts/{contract_id}/payment-success?session_id={session_id}")
    wait_until_state(db, contract_id, ("active", "paid"))
    return pending_contract


@pytest.fixture
def admin(make_user):
    return make_user("admin", name="Ada Admin")


def start_checkout(client, contract_id: int) -> str:
    """Press the pay button; return the Checkout session id it redirected to."""
    response = client.submit(f"/contracts/{contract_id}/pay")
    assert response.status_code == 303, response.get_data(as_text=True)[:300]
    return response.headers["Location"].rstrip("/").rsplit("/", 1)[-1]


def pay_deposit_by_card(db, sandbox, contract_id: int, student, instalments: int = 3) -> str:
    """Pay a plan's deposit by card through Checkout at the sandbox and come back to the
    success page; the plan runs. Returns the Checkout session id."""
    from payments import checkout

    url = checkout.start_checkout(contract_id, db.session.merge(student), instalments=instalments)
    db.session.commit()
    session_id = url.rstrip("/").rsplit("/", 1)[-1]
    assert sandbox.pay(session_id).status_code == 200
    checkout.confirm_return(contract_id, db.session.merge(student), session_id)
    db.session.commit()
    wait_until_state(db, contract_id, ("active", "partially_paid"))
    return session_id


def contract_state(db, contract_id: int) -> tuple[str, str]:
    from contracts.models import Contract

    db.session.expire_all()
    contract = db.session.get(Contract, contract_id)
    return contract.status.value, contract.payment_status.value


def wait_until_state(db, contract_id: int, expected: tuple[str, str], timeout: float = 10.0):
    return wait_for(lambda: contract_state(db, contract_id) == expected, timeout,
                    f"contract {contract_id} to be {expected}")


def count(db, model, **criteria) -> int:
    """Rows of `model` matching `criteria`, read fresh."""
    from sqlalchemy import func

    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model).filter_by(**criteria))


def payments(db, contract_id: int):
    from payments.models import Payment

    db.session.expire_all()
    return list(db.session.scalars(select(Payment).filter_by(contract_id=contract_id)))


# --- a real queue and consumer processes (instead of running jobs at once) ------


@pytest.fixture
def queue(tmp_path) -> dict[str, str]:
    """Queue settings for this test: an SQLite queue file of its own.

    A test that wants Redis overrides this fixture.
    """
    return {"JOBS_SQLITE_PATH": str(tmp_path / "jobs.sqlite3"), "JOBS_QUEUE_NAME": "tests"}


@pytest.fixture
def queued_overrides(sandbox_server, queue) -> dict[str, Any]:
    """App settings with jobs going to `queue`, for a module's `app_overrides`."""
    return {
        "STRIPE_API_BASE": sandbox_server[1],
        "STRIPE_SECRET_KEY": API_KEY,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_CONNECT_WEBHOOK_SECRET": CONNECT_WEBHOOK_SECRET,
        "STRIPE_MAX_NETWORK_RETRIES": 0,
        "JOBS_IMMEDIATE": False,
        "REDIS_URL": None,
        **queue,
    }


@pytest.fixture
def start_consumer(app, database_uri, queue, sandbox_server, tmp_path):
    """Start `flask --app app jobs consume` processes on the test's database and queue.

    They stop before the app's teardown empties the tables.
    """
    from tests.support import Consumer, consumer_env

    env = consumer_env(
        database_uri,
        queue,
        {"STRIPE_SECRET_KEY": API_KEY, "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
         "STRIPE_CONNECT_WEBHOOK_SECRET": CONNECT_WEBHOOK_SECRET,
         "STRIPE_API_BASE": sandbox_server[1]},
    )
    started: list[Consumer] = []

    def start(workers: int = 1) -> Consumer:
        consumer = Consumer(env, tmp_path / f"consumer-{len(started)}.log", workers=workers)
        started.append(consumer)
        return consumer

    yield start
    for consumer in started:
        consumer.stop()


# --- memberships: a coach with a published membership offer, and a student -------------


@pytest.fixture
def stripe_client(sandbox) -> stripe.StripeClient:
    return stripe.StripeClient(API_KEY, base_addresses={"api": sandbox.url},
                               max_network_retries=0)


@pytest.fixture
def coach(make_user, app):
    from accounts.services import update_public_page
    from extensions import db

    user = make_user("coach", name="Maya Coach")
    row = db.session.merge(user)
    update_public_page(row, slug="maya", bio="Interviews.")
    db.session.commit()
    db.session.refresh(row)
    db.session.expunge(row)  # merged later as it is now, slug included
    return row


@pytest.fixture
def member(make_user):
    return make_user("student", name="Ana Student")


@pytest.fixture
def membership_offer(app, db, coach, sandbox) -> int:
    """A published $40.00 monthly membership of 4 sessions (its Price made at the sandbox)."""
    from offers.memberships import create_membership_offer, publish_price
    from offers.models import MembershipPeriod

    offer = create_membership_offer(
        db.session.merge(coach), title="Monthly coaching", description="Four a month.",
        sessions_per_period=4, minutes_per_session=45, price_per_period=4000,
        currency="usd", period=MembershipPeriod.MONTH)
    db.session.commit()
    publish_price(offer.id)
    return offer.id
