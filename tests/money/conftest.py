"""The app wired to a Stripe sandbox that a test can replace by a fresh one at any moment.

The money invariants run many examples in one test: each example gets a sandbox of its
own (a new SQLite file behind the same URL) and an emptied app database, so that our
idempotency keys, derived from row ids that restart, never meet an answer the sandbox
remembers from an earlier example. The sandbox holds its events (no worker, no delivery):
the test delivers them, signed, to the app's real webhooks, in order, after each step: the
platform's to `/webhooks/stripe`, each connected account's (listed with Stripe-Account)
to `/webhooks/stripe/connect` with the Connect endpoint's secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import stripe

from tests.support import Switch, serve_in_thread

API_KEY = "sk_test_money_suite"
WEBHOOK_SECRET = "whsec_money_suite_secret"
CONNECT_WEBHOOK_SECRET = "whsec_money_suite_connect_secret"


@pytest.fixture(scope="session")
def money_sandbox_server() -> Iterator[tuple[Switch, str]]:
    # Thousands of requests per run: their access log would drown a failure's report.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    switch = Switch()
    with serve_in_thread(switch) as url:
        yield switch, url


@pytest.fixture
def app_overrides(money_sandbox_server):
    return {
        "STRIPE_API_BASE": money_sandbox_server[1],
        "STRIPE_SECRET_KEY": API_KEY,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_CONNECT_WEBHOOK_SECRET": CONNECT_WEBHOOK_SECRET,
        "STRIPE_MAX_NETWORK_RETRIES": 0,
    }


def sign(payload: bytes, secret: str = WEBHOOK_SECRET) -> str:
    """A Stripe-Signature header for `payload`, computed as Stripe computes it."""
    timestamp = int(time.time())
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


@dataclass
class Sandbox:
    """One sandbox behind the shared URL: its test tools, its events, and the SDK on it."""

    url: str
    sdk: stripe.StripeClient = field(init=False)
    # One connection, kept alive: thousands of small requests per run.
    http: requests.Session = field(init=False, default_factory=requests.Session)
    # The last event handed out of each connected account (`connected_events`).
    account_cursors: dict[str, str] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.sdk = stripe.StripeClient(API_KEY, base_addresses={"api": self.url},
                                       max_network_retries=0)

    def pay(self, session_id: str, **form: str) -> requests.Response:
        form.setdefault("email", "student@example.com")
        return self.http.post(
            f"{self.url}/_sandbox/checkout/sessions/{session_id}/pay", data=form, timeout=10
        )

    def tool(self, path: str, **data: Any) -> requests.Response:
        return self.http.post(f"{self.url}/_sandbox/{path}", data=data, timeout=10,
                              headers={"Accept": "application/json"})

    def configure(self, **knobs: Any) -> None:
        response = self.http.post(f"{self.url}/_sandbox/config", json=knobs, timeout=10)
        assert response.status_code == 200, response.text

    def events_after(self, cursor: str | None,
                     account: str | None = None) -> list[dict[str, Any]]:
        """Every platform event recorded after the event `cursor` (all of them for None),
        oldest first; with `account`, that connected account's (Stripe-Account header)."""
        found: list[dict[str, Any]] = []
        headers = {"Authorization": f"Bearer {API_KEY}",
                   **({"Stripe-Account": account} if account else {})}
        while True:
            params: dict[str, Any] = {"limit": 100}
            if cursor:
                params["ending_before"] = cursor
            response = self.http.get(f"{self.url}/v1/events", params=params, timeout=10,
                                     headers=headers)
            assert response.status_code == 200, response.text
            page = response.json()
            batch = list(reversed(page["data"]))  # the page is newest first
            found += batch
            if not batch or not page["has_more"]:
                return found
            cursor = batch[-1]["id"]

    def connected_events(self) -> list[dict[str, Any]]:
        """The events of every connected account (listed as Stripe lists them, one account
        at a time with Stripe-Account) not handed out before, each account's oldest first."""
        found: list[dict[str, Any]] = []
        for account in self.listed(self.sdk.v1.accounts):
            batch = self.events_after(self.account_cursors.get(account["id"]), account["id"])
            if batch:
                self.account_cursors[account["id"]] = batch[-1]["id"]
                found += batch
        return found

    def listed(self, resource: Any, **params: Any) -> list[dict[str, Any]]:
        """Every object of an SDK list resource, as plain dicts."""
        return [item.to_dict() for item in
                resource.list({"limit": 100, **params}).auto_paging_iter()]


@pytest.fixture
def fresh_sandbox(tmp_path, money_sandbox_server):
    """fresh_sandbox() → a new, empty Sandbox behind the shared URL (the previous one closed).

    One sandbox web app serves the whole test; each call swaps in new state (its own
    database file) behind it, which costs a fraction of building the app again.
    """
    from sandbox import create_app
    from sandbox.app import Sandbox as SandboxState
    from sandbox.settings import Settings

    switch, url = money_sandbox_server
    # The sandbox commits every Stripe call to SQLite: on tmpfs, when there is one.
    tmpfs = Path("/dev/shm")  # noqa: S108 (mkdtemp makes a private directory in it)
    on_tmpfs = tmpfs.is_dir()
    folder = Path(tempfile.mkdtemp(prefix="money-sandbox-", dir=tmpfs)) if on_tmpfs else tmp_path
    config = {
        "SANDBOX_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "SANDBOX_CONNECT_WEBHOOK_SECRET": CONNECT_WEBHOOK_SECRET,
        # Nothing moves on its own: no delivery, no settlement, no expiry in the
        # background. Sessions still expire when read, by the sandbox's clock.
        "SANDBOX_WORKER": "0",
        "SANDBOX_HOLD_EVENTS": "1",
    }
    sandbox_app = create_app({**config, "SANDBOX_DB": str(folder / "first.sqlite3")})
    switch.target = sandbox_app
    made: list[Sandbox] = []

    def close_last() -> None:
        if made:
            made[-1].http.close()
        sandbox_app.extensions["sandbox"].close()
        for old in folder.glob("*.sqlite3*"):
            old.unlink()  # the previous example's: nobody reads it again

    def fresh() -> Sandbox:
        close_last()
        path = folder / f"sandbox-{len(made)}.sqlite3"
        sandbox_app.extensions["sandbox"] = SandboxState(
            Settings({**config, "SANDBOX_DB": str(path)}))
        made.append(Sandbox(url=url))
        return made[-1]

    yield fresh
    close_last()
    switch.target = None
    if on_tmpfs:
        shutil.rmtree(folder, ignore_errors=True)


def deliver(client, event: dict[str, Any]) -> int:
    """POST one event, signed, to the app's webhook Stripe sends it to; the HTTP status. A
    connected account's event (`account` set) goes to the Connect endpoint, signed with its
    own secret."""
    payload = json.dumps(event).encode()
    if event.get("account"):
        path, secret = "/webhooks/stripe/connect", CONNECT_WEBHOOK_SECRET
    else:
        path, secret = "/webhooks/stripe", WEBHOOK_SECRET
    response = client.post(path, data=payload, content_type="application/json",
                           headers={"Stripe-Signature": sign(payload, secret)})
    return response.status_code
