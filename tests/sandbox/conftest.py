"""Fixtures for the sandbox suite: a running sandbox, an SDK client, a webhook receiver."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import stripe
from flask import Flask
from werkzeug.wrappers import Request, Response

from sandbox import create_app
from tests.support import Switch, serve_in_thread, wait_for

WEBHOOK_SECRET = "whsec_sandbox_tests_secret"
CONNECT_WEBHOOK_SECRET = "whsec_sandbox_tests_connect_secret"
API_KEY = "sk_test_sandbox_suite"


@dataclass
class Receiver:
    """A webhook endpoint that verifies signatures with the SDK and records what it got."""

    url: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)   # verified payloads, in order
    attempts: list[dict[str, Any]] = field(default_factory=list)  # every request seen
    rejected: list[str] = field(default_factory=list)             # signature failures
    fail_first: int = 0       # answer 500 to this many requests first
    slow_first: int = 0       # sleep past the sandbox's timeout on this many requests first
    slow_seconds: float = 0.0
    secret: str = WEBHOOK_SECRET
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def endpoint(self) -> str:
        return f"{self.url}/webhook"

    def wsgi(self, environ: dict, start_response: Callable) -> Any:
        request = Request(environ)
        if request.path != "/webhook":
            # success_url / cancel_url targets for browser tests
            query = request.query_string.decode()
            body = f"<h1 id='landed'>{request.path}</h1><p id='query'>{query}</p>"
            return Response(body, mimetype="text/html")(environ, start_response)
        payload = request.get_data()
        signature = request.headers.get("Stripe-Signature")
        with self.lock:
            self.attempts.append({"signature": signature, "at": time.time(),
                                  "body": payload.decode()})
            fail = self.fail_first > 0
            if fail:
                self.fail_first -= 1
            slow = self.slow_first > 0
            if slow:
                self.slow_first -= 1
        if slow:
            time.sleep(self.slow_seconds)
            return Response("too late", 200)(environ, start_response)
        if fail:
            return Response("try again", 500)(environ, start_response)
        try:
            event = stripe.Webhook.construct_event(payload, signature, self.secret)
        except (stripe.SignatureVerificationError, ValueError) as exc:
            with self.lock:
                self.rejected.append(str(exc))
            return Response("bad signature", 400)(environ, start_response)
        assert event.id.startswith("evt_")
        with self.lock:
            self.events.append(json.loads(payload))
        return Response("ok", 200)(environ, start_response)

    def types(self) -> list[str]:
        with self.lock:
            return [e["type"] for e in self.events]

    def of_type(self, type_: str) -> list[dict[str, Any]]:
        with self.lock:
            return [e for e in self.events if e["type"] == type_]

    def wait_for_type(self, type_: str, count: int = 1, timeout: float = 10.0) -> list[dict]:
        return wait_for(lambda: len(self.of_type(type_)) >= count and self.of_type(type_),
                        timeout, f"{count} × {type_} (got {self.types()})")


@pytest.fixture(scope="session")
def _receiver_server() -> Iterator[tuple[Switch, str]]:
    switch = Switch()
    with serve_in_thread(switch) as url:
        yield switch, url


@pytest.fixture(scope="session")
def _sandbox_server() -> Iterator[tuple[Switch, str]]:
    switch = Switch()
    with serve_in_thread(switch) as url:
        yield switch, url


@pytest.fixture(scope="session")
def _connect_receiver_server() -> Iterator[tuple[Switch, str]]:
    switch = Switch()
    with serve_in_thread(switch) as url:
        yield switch, url


@pytest.fixture
def receiver(_receiver_server: tuple[Switch, str]) -> Iterator[Receiver]:
    """The platform's endpoint."""
    switch, url = _receiver_server
    recv = Receiver(url=url)
    switch.target = recv.wsgi
    yield recv
    switch.target = None


@pytest.fixture
def connect_receiver(_connect_receiver_server: tuple[Switch, str]) -> Iterator[Receiver]:
    """The Connect endpoint (connected accounts' events), with a secret of its own."""
    switch, url = _connect_receiver_server
    recv = Receiver(url=url, secret=CONNECT_WEBHOOK_SECRET)
    switch.target = recv.wsgi
    yield recv
    switch.target = None


@dataclass
class Sandbox:
    url: str
    app: Flask

    def post(self, path: str, **data: Any) -> requests.Response:
        return requests.post(f"{self.url}{path}", data=data, timeout=10)

    def pay(self, session_id: str, **form: str) -> requests.Response:
        form.setdefault("email", "student@example.com")
        return self.post(f"/_sandbox/checkout/sessions/{session_id}/pay", **form)

    def configure(self, **knobs: Any) -> dict[str, Any]:
        response = requests.post(f"{self.url}/_sandbox/config", json=knobs, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def deliveries(self, event_id: str | None = None) -> list[dict[str, Any]]:
        params = {"event_id": event_id} if event_id else {}
        return requests.get(f"{self.url}/_sandbox/deliveries", params=params,
                            timeout=10).json()["data"]


@pytest.fixture
def sandbox_config() -> dict[str, Any]:
    """Overridden by tests (via pytest.mark.parametrize or a local fixture) to change settings."""
    return {}


@pytest.fixture
def sandbox(tmp_path, receiver: Receiver, connect_receiver: Receiver,
            sandbox_config: dict[str, Any],
            _sandbox_server: tuple[Switch, str]) -> Iterator[Sandbox]:
    config = {
        "SANDBOX_DB": str(tmp_path / "sandbox.sqlite3"),
        "SANDBOX_WEBHOOK_URLS": receiver.endpoint,
        "SANDBOX_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "SANDBOX_CONNECT_WEBHOOK_URLS": connect_receiver.endpoint,
        "SANDBOX_CONNECT_WEBHOOK_SECRET": CONNECT_WEBHOOK_SECRET,
        # Compressed schedules keep the suite fast; async payments settle on demand
        # unless a test asks for the timer.
        "SANDBOX_RETRY_SCHEDULE": "0.2,0.4,0.8",
        "SANDBOX_WEBHOOK_TIMEOUT": "2",
        "SANDBOX_ASYNC_SETTLE_SECONDS": "600",
        **sandbox_config,
    }
    switch, url = _sandbox_server
    app = create_app(config)
    switch.target = app
    try:
        yield Sandbox(url=url, app=app)
    finally:
        app.extensions["sandbox"].close()
        switch.target = None


@pytest.fixture
def client(sandbox: Sandbox) -> stripe.StripeClient:
    return stripe.StripeClient(API_KEY, base_addresses={"api": sandbox.url},
                               max_network_retries=0)


@pytest.fixture
def make_session(client: stripe.StripeClient, receiver: Receiver) -> Callable[..., Any]:
    """Create a Checkout Session like the app does; keyword arguments override params."""

    def make(**overrides: Any) -> stripe.checkout.Session:
        params: dict[str, Any] = {
            "mode": "payment",
            "line_items": [{
                "price_data": {"currency": "usd", "unit_amount": 6000,
                               "product_data": {"name": "Coaching: 4 × 60 min"}},
                "quantity": 4,
            }],
            "success_url": f"{receiver.url}/success?session_id={{CHECKOUT_SESSION_ID}}",
            "cancel_url": f"{receiver.url}/cancel",
            "client_reference_id": "contract-42",
            "metadata": {"contract_id": "42"},
            "payment_intent_data": {"metadata": {"contract_id": "42"}},
            "customer_email": "student@example.com",
        }
        params.update(overrides)
        return client.v1.checkout.sessions.create(params=params)

    return make
