"""Fixtures shared by every suite."""

from __future__ import annotations

import os
import re

import pytest
from flask.testing import FlaskClient
from flask_migrate import upgrade
from sqlalchemy import text
from werkzeug.datastructures import MultiDict

from config import database_uri_from_url
from tests.support import CHEAP_PASSWORD_HASHING, CHROMIUM, CHROMIUM_ARGS, require_service


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the run, driven by Playwright."""
    require_service(os.path.exists(CHROMIUM), f"Chromium not installed at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    """A fresh browser context (no cookies) and page per test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


# --- the application ---------------------------------------------------------

PASSWORD = "correct-horse-battery"


def is_postgres(uri: str) -> bool:
    return uri.startswith("postgresql")


def pytest_runtest_setup(item: pytest.Item) -> None:
    # Tests marked `postgres` need PostgreSQL's row locks and concurrency. CI runs
    # the whole suite twice, on SQLite and then on PostgreSQL; they run in the
    # second pass, and locally whenever DATABASE_URL points at PostgreSQL.
    if item.get_closest_marker("postgres") and not os.environ.get(
        "DATABASE_URL", ""
    ).startswith(("postgres://", "postgresql")):
        pytest.skip("needs PostgreSQL: set DATABASE_URL (CI runs these in its PostgreSQL pass)")


@pytest.fixture(scope="session")
def database_uri(tmp_path_factory):
    """The test database, built once per run by the migrations (which tests them too).

    `DATABASE_URL` selects PostgreSQL (CI runs the suite on both); otherwise a
    SQLite file in a temporary folder. A parallel worker on PostgreSQL gets a
    database of its own beside it, dropped at the end.
    """
    url = os.environ.get("DATABASE_URL")
    uri = (
        database_uri_from_url(url)
        if url
        else f"sqlite:///{tmp_path_factory.mktemp('db')}/test.sqlite3"
    )
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker and is_postgres(uri):
        # `make test` runs the suite in parallel workers; each gets a database of its own.
        uri = _worker_database(uri, worker)
    from app import create_app
    from extensions import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": uri, **CHEAP_PASSWORD_HASHING})
    with app.app_context():
        with db.engine.begin() as conn:
            # Start from nothing, so a previous run's leftovers cannot hide a migration bug.
            db.metadata.drop_all(conn)
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        upgrade()
        db.engine.dispose()
    yield uri
    if worker and is_postgres(uri):
        _drop_database(uri)


def _on_server(uri: str, *statements: str) -> None:
    """Run statements on the PostgreSQL server of `uri`, outside any database's transaction."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    server = create_engine(make_url(uri).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        for statement in statements:
            conn.execute(text(statement))
    server.dispose()


def _worker_database(uri: str, worker: str) -> str:
    """A fresh PostgreSQL database beside `uri`'s for one test worker; its URI."""
    from sqlalchemy.engine import make_url

    base = make_url(uri)
    name = f"{base.database}_{worker}"
    _on_server(uri, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
    return base.set(database=name).render_as_string(hide_password=False)


def _drop_database(uri: str) -> None:
    from sqlalchemy.engine import make_url

    _on_server(uri, f'DROP DATABASE IF EXISTS "{make_url(uri).database}" WITH (FORCE)')


class FormClient(FlaskClient):
    """A test client that posts forms with a CSRF token, as a browser would."""

    def csrf_token(self) -> str:
        html = self.get("/auth/login", follow_redirects=True).get_data(as_text=True)
        match = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
        assert match, "no CSRF token on the page"
        return match.group(1)

    def submit(self, url: str, data: dict | None = None, **kwargs):
        return self.post(url, data={"csrf_token": self.csrf_token(), **(data or {})}, **kwargs)

    def submit_confirmed(self, url: str, data: dict | None = None, **kwargs):
        """Post a money form, then press Confirm on the page it answers with (`admin.confirm`).

        The confirming form is read from the page as a browser would send it: its hidden
        fields (the same values again and the figures read) and confirm=1.
        """
        first = self.submit(url, data)
        return self.post(url, data=confirm_fields(first), **kwargs)


def confirm_fields(response) -> MultiDict:
    """What the Confirm button of a confirmation page posts."""
    from html import unescape

    html = response.get_data(as_text=True)
    assert response.status_code in (200, 409), response.status_code
    form = re.search(r'<form[^>]*id="confirm-form".*?</form>', html, re.S)
    assert form, "no confirmation on the page"
    fields = MultiDict(
        (unescape(name), unescape(value))
        for name, value in re.findall(
            r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form.group(0)
        )
    )
    fields["confirm"] = "1"
    return fields


@pytest.fixture
def app_overrides() -> dict:
    """Extra settings for the app under test; suites override this fixture."""
    return {}


@pytest.fixture
def app(database_uri, app_overrides):
    from app import create_app
    from extensions import db

    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_uri,
            "RATELIMIT_STORAGE_URI": "memory://",
            "MAIL_BACKEND": "locmem",
            # Jobs run where they are enqueued, through the real task path.
            "JOBS_IMMEDIATE": True,
            **CHEAP_PASSWORD_HASHING,
            **app_overrides,
        }
    )
    app.test_client_class = FormClient
    yield app
    with app.app_context():
        db.session.remove()
        # Empty every table (children first) so the next test starts clean.
        with db.engine.begin() as conn:
            for table in reversed(db.metadata.sorted_tables):
                conn.execute(table.delete())
        db.engine.dispose()


@pytest.fixture(autouse=True)
def ledger_clean(request):
    """Every test that moved money ends with the ledger check clean (`payouts.ledger`).

    Set up after the app (so it runs before the app's teardown empties the tables);
    a test that builds a discrepancy on purpose says so with `ledger_dirty`.
    """
    if "app" not in request.fixturenames or request.node.get_closest_marker("ledger_dirty"):
        yield
        return
    app = request.getfixturevalue("app")
    yield
    from extensions import db
    from payouts.ledger import check

    with app.app_context():
        problems = check()
        db.session.remove()
    assert problems == [], "the ledger check found discrepancies:\n" + "\n".join(problems)


@pytest.fixture(autouse=True)
def clock():
    """The app's one clock; a test may `freeze` or `advance` it. Real time again after."""
    import clock

    yield clock
    clock.reset()


@pytest.fixture
def client(app) -> FormClient:
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def db(app):
    """The database session inside an app context."""
    from extensions import db

    with app.app_context():
        yield db


@pytest.fixture
def make_user(app):
    """Create users: make_user("coach", email=...) returns the committed User."""
    from accounts.models import Role
    from accounts.services import create_user
    from extensions import db

    counter = iter(range(1, 10_000))

    def make(
        role: str = "student",
        *,
        email: str | None = None,
        name: str | None = None,
        timezone: str = "UTC",
    ):
        n = next(counter)
        with app.app_context():
            user = create_user(
                email=email or f"{role}{n}@example.com",
                name=name or f"{role.title()} {n}",
                password=PASSWORD,
                role=Role(role),
                timezone=timezone,
            )
            db.session.commit()
            db.session.refresh(user)
            db.session.expunge(user)
            return user

    return make


@pytest.fixture
def make_proposal(app, make_user):
    """Send a proposal (coach and student made if not given); returns its id."""
    from contracts.services import send_proposal
    from extensions import db

    def make(coach=None, student=None, **terms) -> int:
        coach = coach or make_user("coach")
        student = student or make_user("student")
        values = {
            "title": "Interview coaching",
            "description": "Four sessions of mock interviews.",
            "session_count": 4,
            "minutes_per_session": 60,
            "price_per_session": 5000,
            "currency": "usd",
        } | terms
        with app.app_context():
            proposal = send_proposal(db.session.merge(coach), student_email=student.email, **values)
            db.session.commit()
            return proposal.id

    return make


@pytest.fixture
def make_plan_contract(app, make_user, make_proposal):
    """A pending usd contract of 4 sessions whose coach offers a 25 % deposit and up to 3
    monthly instalments: make_plan_contract(price_per_session) → (id, student, coach)."""
    from contracts.services import accept_proposal
    from extensions import db

    def make(price_per_session: int):
        coach = make_user("coach", name="Maya Coach")
        student = make_user("student", name="Ana Student")
        proposal_id = make_proposal(coach, student, price_per_session=price_per_session,
                                    session_count=4, plan_deposit_percent=25,
                                    plan_max_instalments=3)
        with app.app_context():
            contract = accept_proposal(proposal_id, db.session.merge(student))
            db.session.commit()
            return contract.id, student, coach

    return make


@pytest.fixture
def record_plan_deposit(app):
    """record_plan_deposit(contract_id, admin, reference=...) → the id of the plan deposit
    an admin recorded as paid offline today (a plan of 3 instalments starts)."""
    from datetime import date

    from extensions import db
    from payments.manual import record_manual_payment
    from payments.models import ManualMethod

    def record(contract_id: int, admin, *, reference: str = "DEP-1",
               received_on: date | None = None) -> int:
        import clock

        with app.test_request_context():  # the parties' notifications link to the contract
            deposit = record_manual_payment(
                contract_id, db.session.merge(admin), method=ManualMethod.BANK_TRANSFER,
                reference=reference, received_on=received_on or clock.now().date(), note="",
                instalments=3,
            )
            db.session.commit()
            return deposit.id

    return record


def login(client: FormClient, user, password: str = PASSWORD):
    """Log `user` in through the login form."""
    response = client.submit("/auth/login", {"email": user.email, "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return response


@pytest.fixture
def sent_mail(app) -> list:
    """The mail the app sends from here on (Flask-Mailman's `locmem` backend keeps it)."""
    outbox: list = []
    app.extensions["mailman"].outbox = outbox
    return outbox
