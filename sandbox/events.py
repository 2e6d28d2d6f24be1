"""Events and their webhook deliveries.

`Events.emit` records an event (as Stripe would, in its envelope) and queues
one delivery per configured endpoint: an event that happened on a connected
account (its `account` set) goes only to the Connect endpoints, signed with the
Connect secret, every other event only to the platform's endpoints, as Stripe
routes them. The `Worker` thread sends due deliveries, signed exactly like
Stripe, and retries failures on the (compressed) retry schedule; it also runs
the engine's timed transitions (session expiry, async settlement) so nothing
depends on a request arriving.
Every attempt is logged in the `attempts` table.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import requests

from sandbox import shapes
from sandbox.settings import Knobs, Settings
from sandbox.store import Store

log = logging.getLogger("sandbox.webhooks")

USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"


def sign(body: str, secret: str, timestamp: int) -> str:
    """The Stripe-Signature header: HMAC-SHA256 of "{t}.{body}" keyed with the whole secret."""
    mac = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def endpoints(knobs: Knobs, account: str | None) -> list[str]:
    """Where an event goes: a connected account's (`account` set) to the Connect
    endpoints only, the platform's to the platform's endpoints only."""
    return knobs.connect_webhook_urls if account else knobs.webhook_urls


class Events:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.wake = threading.Event()  # set when something is queued, so the worker sends now
        self._shuffle_release: float | None = None

    def emit(self, type_: str, obj: dict[str, Any], *, request: tuple[str, str | None] | None,
             previous_attributes: dict[str, Any] | None = None,
             account: str | None = None) -> dict[str, Any]:
        """Record an event and queue its deliveries; `account` marks an event that happened
        on a connected account (Stripe's `account` field)."""
        req_id, idem_key = request if request else (None, None)
        event = shapes.event(type_, json.loads(json.dumps(obj)), now=self.settings.now(),
                             request_id=req_id, idempotency_key=idem_key,
                             previous_attributes=previous_attributes, account=account)
        with self.store.transaction():
            self.store.insert(event)
            knobs = self.settings.knobs
            if not knobs.hold_events:
                when = self._first_attempt_at(knobs.delivery_delay, knobs.shuffle_window)
                copies = 2 if knobs.duplicate_delivery else 1
                for url in endpoints(knobs, account):
                    for _ in range(copies):
                        self.queue(event["id"], url, when)
        self.wake.set()
        return event

    def _first_attempt_at(self, delay: float, window: float) -> float:
        now = time.time()
        if window <= 0:
            return now + delay
        # Shuffle: events emitted within one window are released together and
        # sent in a random order when the window closes.
        if self._shuffle_release is None or self._shuffle_release <= now:
            self._shuffle_release = now + window
        return self._shuffle_release + delay

    def queue(self, event_id: str, url: str, when: float) -> None:
        self.store.execute(
            "INSERT INTO deliveries (event_id, url, status, next_attempt_at, created) "
            "VALUES (?, ?, 'pending', ?, ?)",
            (event_id, url, when, time.time()),
        )

    def resend(self, event_id: str) -> int:
        """Queue the event again to every endpoint it goes to (the dashboard's "Resend"),
        hold or not."""
        event = self.store.get(event_id, "event") or {}
        urls = endpoints(self.settings.knobs, event.get("account"))
        with self.store.transaction():
            for url in urls:
                self.queue(event_id, url, time.time())
        self.wake.set()
        return len(urls)

    def pending_webhooks(self, event_id: str) -> int:
        rows = self.store.query(
            "SELECT COUNT(DISTINCT url) AS n FROM deliveries WHERE event_id = ? AND url NOT IN "
            "(SELECT url FROM deliveries WHERE event_id = ? AND status = 'succeeded')",
            (event_id, event_id),
        )
        return rows[0]["n"]

    def load(self, event_id: str) -> dict[str, Any] | None:
        event = self.store.get(event_id, "event")
        if event is not None:
            event["pending_webhooks"] = self.pending_webhooks(event_id)
        return event

    # -- delivery ------------------------------------------------------------

    def due(self) -> list[Any]:
        rows = self.store.query(
            "SELECT * FROM deliveries WHERE status = 'pending' AND next_attempt_at <= ? "
            "ORDER BY next_attempt_at, id",
            (time.time(),),
        )
        if len(rows) > 1 and self.settings.knobs.shuffle_window > 0:
            shuffled = list(rows)
            while [r["id"] for r in shuffled] == [r["id"] for r in rows]:
                random.shuffle(shuffled)
            rows = shuffled
        return rows

    def attempt(self, delivery: Any) -> bool:
        """One delivery attempt: POST, log it, schedule a retry or close the delivery."""
        knobs = self.settings.knobs
        event = self.load(delivery["event_id"])
        started = time.time()
        status_code: int | None = None
        error: str | None = None
        if event is None:
            error = "event not found"
        elif knobs.drop_first_attempt and delivery["attempts"] == 0:
            error = "dropped by the sandbox (drop_first_attempt)"
        else:
            body = json.dumps(event, indent=2)
            headers = {
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": USER_AGENT,
                "Stripe-Signature": sign(body, self.settings.secret_for(event.get("account")),
                                         int(time.time())),
            }
            try:
                response = requests.post(delivery["url"], data=body.encode(), headers=headers,
                                         timeout=knobs.webhook_timeout, allow_redirects=False)
                status_code = response.status_code
                response.close()
            except requests.RequestException as exc:
                error = f"{type(exc).__name__}: {exc}"
        ok = status_code is not None and 200 <= status_code < 300
        attempts = delivery["attempts"] + 1
        schedule = knobs.retry_schedule
        if ok:
            status, next_at = "succeeded", None
        elif attempts <= len(schedule):
            status, next_at = "pending", time.time() + schedule[attempts - 1]
        else:
            status, next_at = "failed", None
        with self.store.transaction():
            self.store.execute(
                "INSERT INTO attempts (delivery_id, event_id, url, at, status_code, error, "
                "duration_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (delivery["id"], delivery["event_id"], delivery["url"], started, status_code,
                 error, int((time.time() - started) * 1000)),
            )
            self.store.execute(
                "UPDATE deliveries SET status = ?, attempts = ?, next_attempt_at = ? WHERE id = ?",
                (status, attempts, next_at, delivery["id"]),
            )
        log.info("webhook %s %s -> %s %s", delivery["event_id"], delivery["url"],
                 status_code, error or "")
        return ok


class Worker:
    """Background thread: timed transitions, then due webhook deliveries, in a loop."""

    def __init__(self, events: Events, tick: Callable[[], None], interval: float = 0.1) -> None:
        self.events = events
        self.tick = tick
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sandbox-worker", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.events.wake.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
            self._thread = None

    def run_once(self) -> None:
        self.tick()
        for delivery in self.events.due():
            if self._stop.is_set():
                return
            self.events.attempt(delivery)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # keep the worker alive whatever one step did
                log.exception("sandbox worker step failed")
            self.events.wake.wait(self.interval)
            self.events.wake.clear()
