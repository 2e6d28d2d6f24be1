"""Helpers shared by the test suites: real servers on free ports and service checks."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from werkzeug.serving import make_server

CHROMIUM = "/usr/bin/chromium"
# The flags keep Chromium off the network: this machine has none, and the
# background services would otherwise retry connections during every test.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# Argon2's cheapest parameters: at production cost, hashing for every user a test makes
# and every login it does would be most of the suite's time.
CHEAP_PASSWORD_HASHING = {
    "PASSWORD_HASH_TIME_COST": 1,
    "PASSWORD_HASH_MEMORY_COST": 8,
    "PASSWORD_HASH_PARALLELISM": 1,
}


def require_service(available: bool, reason: str) -> None:
    """Skip locally when a service is missing; in CI a missing service is a failure."""
    if available:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (required in CI)")
    pytest.skip(reason)


@contextmanager
def serve_in_thread(wsgi_app, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve a WSGI app on a free port in a background thread; yield its base URL."""
    server = make_server(host, 0, wsgi_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def wait_for(predicate, timeout: float = 10.0, what: str = "condition"):
    """Poll until predicate() is truthy, within a bounded deadline (never a fixed sleep)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def at_once(app, work, args: list) -> list:
    """Run `work(arg)` for every arg in a thread of its own, all let go at the same moment.

    Each thread has its own app context (so its own database session) and a request
    context for links, as a request or a job would. Returns the results in the order of
    `args`; an exception in a thread is raised here, never lost.
    """
    from extensions import db

    barrier = threading.Barrier(len(args))
    results: list = [None] * len(args)
    errors: list[BaseException] = []

    def run(index: int, arg) -> None:
        with app.app_context(), app.test_request_context():
            try:
                barrier.wait()
                results[index] = work(arg)
            except BaseException as exc:  # reported below, not lost in the thread
                db.session.rollback()
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(i, arg)) for i, arg in enumerate(args)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


class Switch:
    """A WSGI app forwarding to whichever app the current test installed.

    Servers start once per run (stopping one costs about half a second) while each
    test still gets fresh apps behind them.
    """

    def __init__(self) -> None:
        self.target = None

    def __call__(self, environ, start_response):
        assert self.target is not None, "no app installed for this test"
        return self.target(environ, start_response)


# --- browser helpers ---------------------------------------------------------

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


def register(page, url: str, name: str, email: str, role: str, timezone: str) -> None:
    page.goto(f"{url}/auth/register")
    page.get_by_label("Full name").fill(name)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill("a-long-password")
    page.get_by_label("Repeat password").fill("a-long-password")
    page.get_by_label(role.title()).check()
    page.get_by_label("Time zone").select_option(timezone)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(f"{url}/contracts/")


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def log_in(page, url: str, email: str, password: str) -> None:
    """Log in through the login form and land on the contracts page."""
    page.goto(f"{url}/auth/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{url}/contracts/")


def pay_by_card(page, sandbox_url: str, email: str, name: str, shot_name: str | None = None):
    """On the sandbox's hosted checkout page, pay with the 4242 test card."""
    page.wait_for_url(f"{sandbox_url}/checkout/*")
    page.locator("#card-email").fill(email)
    page.locator("#card-number").fill("4242 4242 4242 4242")
    page.locator("#card-expiry").fill("12/34")
    page.locator("#card-cvc").fill("123")
    page.locator("#card-name").fill(name)
    if shot_name:
        shot(page, shot_name)
    page.locator("#pay-card").click()


# --- job consumers in processes of their own ---------------------------------

REPO = Path(__file__).resolve().parents[1]


class Consumer:
    """`flask --app app jobs consume` in a child process, logging to a file."""

    def __init__(self, env: dict[str, str], log_path: Path, workers: int = 1) -> None:
        import subprocess
        import sys

        self.log_path = log_path
        self._log = open(log_path, "w")  # noqa: SIM115 (closed in stop())
        command = [sys.executable, "-m", "flask", "--app", "app", "jobs", "consume",
                   "--workers", str(workers), "--no-periodic"]
        self.process = subprocess.Popen(  # noqa: S603 (our own command line)
            command, cwd=REPO, env={**os.environ, **env}, stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        wait_for(lambda: "consumer started" in self.log() or self.process.poll() is not None,
                 20, "the job consumer to start")
        assert self.process.poll() is None, self.log()

    def log(self) -> str:
        return self.log_path.read_text()

    def kill(self) -> None:
        """Kill at once (SIGKILL), as a crash or an out-of-memory kill would."""
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except Exception:  # it would not stop: make sure it is gone
                self.process.kill()
                self.process.wait(10)
        self._log.close()


def consumer_env(
    database_uri: str, queue: dict[str, str], stripe: dict[str, str]
) -> dict[str, str]:
    """The environment a consumer needs to share the tests' database, queue and Stripe."""
    return {
        "DATABASE_URL": database_uri,
        "JOBS_IMMEDIATE": "0",
        **{name: str(value) for name, value in CHEAP_PASSWORD_HASHING.items()},
        **queue,
        **stripe,
    }


def redis_available(url: str = "redis://127.0.0.1:6379/0") -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


# --- accessibility and layout checks in the browser ----------------------------

AXE_JS = REPO / "node_modules" / "axe-core" / "axe.min.js"
# WCAG 2.1 A and AA, plus axe's best practices (landmarks, one h1, ...).
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
PHONE = {"width": 390, "height": 844}


@contextmanager
def new_page(browser, viewport: dict[str, int] | None = None) -> Iterator:
    """A page in a fresh context that lets axe-core be injected despite the app's CSP."""
    context = browser.new_context(
        viewport=viewport or {"width": 1280, "height": 900}, bypass_csp=True
    )
    context.set_default_timeout(10_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def log_in_anywhere(page, url: str, email: str, password: str) -> None:
    """Log in through the login form and wait until the app has left the login page."""
    page.goto(f"{url}/auth/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda address: "/auth/login" not in address)


def watch_failed_loads(page) -> list[str]:
    """Collect every response of 400 or more (a missing favicon, script or style) from now on."""
    failed: list[str] = []
    page.on(
        "response",
        lambda response: failed.append(f"{response.status} {response.url}")
        if response.status >= 400
        else None,
    )
    return failed


def axe_violations(page) -> list[dict]:
    """Run axe-core on the page; return its serious and critical violations."""
    if not AXE_JS.exists():
        pytest.fail(f"{AXE_JS.relative_to(REPO)} is missing: run `make test` (or `npm ci`)")
    page.add_script_tag(path=str(AXE_JS))
    results = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags},"
        " resultTypes: ['violations']})",
        AXE_TAGS,
    )
    return [v for v in results["violations"] if v["impact"] in ("serious", "critical")]


def describe_violations(where: str, violations: list[dict]) -> str:
    """Each violation's rule, help text and the offending elements, for a failure message."""
    lines = []
    for violation in violations:
        lines.append(f"{where}: [{violation['impact']}] {violation['id']}: {violation['help']}")
        for node in violation["nodes"][:8]:
            lines.append(f"    {' '.join(node['target'])}")
        if len(violation["nodes"]) > 8:
            lines.append(f"    ... and {len(violation['nodes']) - 8} more")
    return "\n".join(lines)


def shot_top(page, name: str, height: int = 2400) -> None:
    """Like shot(), for a long page: its first `height` pixels only."""
    ARTIFACTS.mkdir(exist_ok=True)
    width = page.viewport_size["width"]
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True,
                    clip={"x": 0, "y": 0, "width": width, "height": height})


def page_overflow(page) -> str | None:
    """None when nothing widens the page; else the widths and the widest offending elements."""
    return page.evaluate(
        """() => {
          const root = document.documentElement, limit = window.innerWidth;
          if (root.scrollWidth <= limit) return null;
          const clipped = el => {
            for (let up = el.parentElement; up && up !== document.body; up = up.parentElement) {
              if (getComputedStyle(up).overflowX !== 'visible') return true;
            }
            return false;
          };
          const wide = [...document.body.querySelectorAll('*')]
            .filter(el => el.getBoundingClientRect().right > limit + 1 && !clipped(el))
            .filter(el => ![...el.children].some(c => c.getBoundingClientRect().right > limit + 1))
            .slice(0, 5)
            .map(el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
                 + (el.className && typeof el.className === 'string'
                    ? '.' + el.className.trim().split(/\\s+/).join('.') : '')
                 + ' (right edge ' + Math.round(el.getBoundingClientRect().right) + 'px)');
          return `scrollWidth ${root.scrollWidth}px > ${limit}px: ` + wide.join('; ');
        }"""
    )


def add_session(db, contract_id: int, starts_at, **values) -> int:
    """A session row written directly, for states the booking rules would not let a test
    reach (a session in the past, say); returns its id."""
    from datetime import timedelta

    from contracts.models import CoachingSession, Contract

    contract = db.session.get(Contract, contract_id)
    row = CoachingSession(
        contract_id=contract_id,
        coach_id=contract.coach_id,
        booked_by_id=contract.student_id,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=contract.minutes_per_session),
        **values,
    )
    db.session.add(row)
    db.session.commit()
    return row.id


def register_on_the_way(page, name: str, email: str) -> None:
    """From the login page a protected link led to: create a student account there (the
    way back, `next`, is kept)."""
    import re

    page.wait_for_url(re.compile(r".*/auth/login\?next=.*"))
    page.get_by_role("link", name="Create an account").click()
    page.wait_for_url(re.compile(r".*/auth/register\?next=.*"))
    page.get_by_label("Full name").fill(name)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill("a-long-password")
    page.get_by_label("Repeat password").fill("a-long-password")
    page.get_by_label("Student").check()
    page.get_by_role("button", name="Create account").click()
