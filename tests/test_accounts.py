"""Registration, login, logout, CSRF, rate limits, headers and the admin CLI."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select

from accounts.models import Role, User
from tests.conftest import PASSWORD, login

REGISTRATION = {
    "name": "Ana Ruiz",
    "email": "Ana.Ruiz@Example.com",
    "password": "a-long-password",
    "confirm": "a-long-password",
    "role": "student",
    "timezone": "America/New_York",
}


def user_count(db) -> int:
    return db.session.scalar(select(func.count()).select_from(User))


def test_register_logs_in_and_stores_a_hashed_lowercase_email(client, db):
    response = client.submit("/auth/register", REGISTRATION)
    assert response.status_code == 302
    assert response.headers["Location"] == "/contracts/"
    user = db.session.scalar(select(User))
    assert user.email == "ana.ruiz@example.com"
    assert user.role is Role.STUDENT
    assert user.timezone == "America/New_York"
    assert user.password_hash.startswith("$argon2")
    assert "Ana Ruiz" in client.get("/contracts/").get_data(as_text=True)


def owner_mails(db, email: str) -> list:
    from notifications.models import OutboxMail

    return list(db.session.scalars(select(OutboxMail).filter_by(recipient=email)))


def test_a_registered_address_is_not_named_and_its_owner_gets_a_mail(client, db, make_user):
    make_user("coach", email="ana.ruiz@example.com")
    response = client.submit("/auth/register", REGISTRATION | {"email": "ANA.RUIZ@EXAMPLE.COM"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/auth/login"
    page = client.get("/auth/login").get_data(as_text=True)
    assert "We sent a mail to that address" in page
    assert "exists" not in page and "already" not in page
    assert user_count(db) == 1
    (mail,) = owner_mails(db, "ana.ruiz@example.com")
    assert mail.subject == "Someone tried to register with your Coachpact address"
    assert "http://127.0.0.1:5000/auth/login" in mail.body
    assert "http://127.0.0.1:5000/auth/forgot" in mail.body
    # Still logged out: the attempt gave nobody the account.
    assert client.get("/contracts/").status_code == 302


def test_the_owner_gets_one_such_mail_an_hour(client, db, make_user, clock):
    from datetime import timedelta

    make_user("coach", email="ana.ruiz@example.com")
    for _ in range(3):
        assert client.submit("/auth/register", REGISTRATION).status_code == 302
    assert len(owner_mails(db, "ana.ruiz@example.com")) == 1
    clock.advance(timedelta(hours=1, seconds=1))
    assert client.submit("/auth/register", REGISTRATION).status_code == 302
    assert len(owner_mails(db, "ana.ruiz@example.com")) == 2


def test_registering_an_existing_demo_address_mails_its_owner(client, db, make_user):
    # The demo accounts live under the special-use `.test` domain (demo.py, README).
    make_user("student", email="ana@coachpact.test")
    response = client.submit("/auth/register", REGISTRATION | {"email": "Ana@coachpact.test"})
    assert response.status_code == 302
    assert "Invalid email address." not in client.get("/auth/login").get_data(as_text=True)
    assert user_count(db) == 1
    assert len(owner_mails(db, "ana@coachpact.test")) == 1


def test_a_test_domain_address_can_register_outside_production(client, db):
    response = client.submit("/auth/register", REGISTRATION | {"email": "lea@coachpact.test"})
    assert response.status_code == 302
    assert db.session.scalar(select(User)).email == "lea@coachpact.test"


@pytest.mark.parametrize("app_overrides", [{"APP_ENV": "production"}])
def test_production_refuses_test_domain_addresses(client, db, app_overrides):
    # `.test` never receives mail: only demo and test data may use it.
    response = client.submit("/auth/register", REGISTRATION | {"email": "lea@coachpact.test"})
    assert response.status_code == 200
    assert "Invalid email address." in response.get_data(as_text=True)
    assert user_count(db) == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": ""}, "This field is required."),
        ({"name": "x" * 101}, "Field cannot be longer than 100 characters."),
        ({"email": "not-an-email"}, "Invalid email address."),
        ({"password": "short", "confirm": "short"}, "Field must be between 10 and 128"),
        ({"confirm": "something-else"}, "Passwords differ."),
        ({"timezone": "Mars/Olympus_Mons"}, "Not a valid choice."),
        ({"role": "admin"}, "Not a valid choice."),
    ],
)
def test_bad_registration_shows_the_error_and_writes_nothing(client, db, change, message):
    response = client.submit("/auth/register", REGISTRATION | change)
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert user_count(db) == 0


def test_post_without_csrf_token_is_rejected_and_writes_nothing(client, db):
    response = client.post("/auth/register", data=REGISTRATION)
    assert response.status_code == 400
    assert user_count(db) == 0


def test_login_and_logout(client, make_user):
    user = make_user("coach", email="maya@example.com")
    response = login(client, user)
    assert response.headers["Location"] == "/contracts/"
    page = client.get("/contracts/")
    assert page.status_code == 200 and user.name in page.get_data(as_text=True)
    response = client.submit("/auth/logout")
    assert response.status_code == 302
    assert client.get("/contracts/").status_code == 302  # back to the login page


def test_login_email_is_case_insensitive(client, make_user):
    user = make_user(email="kenji@example.com")
    response = client.submit("/auth/login", {"email": "KENJI@example.com", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/contracts/").status_code == 200
    assert user.name in client.get("/contracts/").get_data(as_text=True)


def test_wrong_password_does_not_log_in(client, make_user):
    user = make_user()
    response = client.submit("/auth/login", {"email": user.email, "password": "wrong-password"})
    assert response.status_code == 200
    assert "Email or password is wrong." in response.get_data(as_text=True)
    assert client.get("/contracts/").status_code == 302


def test_login_is_rate_limited(client, make_user):
    user = make_user()
    statuses = [
        client.submit("/auth/login", {"email": user.email, "password": "wrong"}).status_code
        for _ in range(11)
    ]
    assert statuses[:10] == [200] * 10
    assert statuses[10] == 429
    # Even the right password is refused until the window passes.
    assert (
        client.submit("/auth/login", {"email": user.email, "password": PASSWORD}).status_code == 429
    )


# `next` values that would take the user off the site. Browsers drop tab, CR and LF
# anywhere in a URL and read a backslash as a slash, so "/\t/evil.example" is //evil.example.
OFFSITE_TARGETS = [
    "/\t/evil.example/",
    "/\r/evil.example",
    "/\n/evil.example",
    "\r\n//evil.example",
    "\\\\evil.example",
    "/\\evil.example",
    "/\\/evil.example",
    "//evil.example",
    "https://evil.example",
    "/\x7f/evil.example",
    "javascript:alert(1)",
]
# The same kind of values as they arrive in a query string, encoded by hand the way a
# crafted link carries them.
OFFSITE_QUERIES = [
    "next=/%09/evil.example/",
    "next=/%0d/evil.example",
    "next=/%0A/evil.example",
    "next=%0d%0a//evil.example",
    "next=/%09%09/evil.example",
    "next=%5C%5Cevil.example",
    "next=/%5Cevil.example",
    "next=/%5C/evil.example",
    "next=//evil.example/steal",
    "next=%2F%2Fevil.example",
    "next=/%2Fevil.example",
    "next=https://evil.example",
    "next=https%3A%2F%2Fevil.example",
]


def post_login(client, user, query: str):
    """Log in through the form, with `query` as the raw query string of the login URL."""
    data = {"email": user.email, "password": PASSWORD, "csrf_token": client.csrf_token()}
    return client.post(f"/auth/login?{query}", data=data)


@pytest.mark.parametrize(
    "query",
    [urlencode({"next": target}) for target in OFFSITE_TARGETS] + OFFSITE_QUERIES,
)
def test_login_never_redirects_off_site(client, make_user, query):
    response = post_login(client, make_user(), query)
    assert response.status_code == 302
    assert response.headers["Location"] == "/contracts/"
    assert client.get("/contracts/").status_code == 200  # logged in all the same


def test_login_follows_next_to_our_own_page(client, make_user):
    response = post_login(client, make_user(), "next=/contracts/3")
    assert response.status_code == 302
    assert response.headers["Location"] == "/contracts/3"


def test_session_cookie_and_security_headers(client, make_user):
    response = login(client, make_user())
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    page = client.get("/auth/register", follow_redirects=True)
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


def test_create_admin_cli(runner, db):
    result = runner.invoke(
        args=[
            "create-admin",
            "--email",
            "Boss@Example.com",
            "--name",
            "Boss",
            "--password",
            "admin-password-1",
        ]
    )
    assert result.exit_code == 0, result.output
    admin = db.session.scalar(select(User))
    assert admin.email == "boss@example.com" and admin.role is Role.ADMIN
    again = runner.invoke(
        args=[
            "create-admin",
            "--email",
            "boss@example.com",
            "--name",
            "Boss",
            "--password",
            "admin-password-1",
        ]
    )
    assert again.exit_code != 0 and "already exists" in again.output
    assert user_count(db) == 1


def test_admins_cannot_be_registered_through_the_form(client, db):
    client.submit("/auth/register", REGISTRATION | {"role": "admin"})
    assert db.session.scalar(select(func.count()).select_from(User).filter_by(role=Role.ADMIN)) == 0


def test_error_pages_are_rendered(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert "Not found" in response.get_data(as_text=True)


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}


def test_production_settings_hash_at_argon2s_production_cost(app, db, make_user, tmp_path):
    from argon2 import PasswordHasher, extract_parameters

    from accounts.services import authenticate, password_hasher
    from config import load_config

    # The tests hash at argon2's cheapest cost (conftest)...
    user = make_user("student")
    assert user.password_hash.startswith("$argon2id$v=19$m=8,t=1,p=1$")

    # ...settings loaded without their overrides hash at the library's production cost...
    production = load_config(str(tmp_path), {})
    app.config.update({name: value for name, value in production.items()
                       if name.startswith("PASSWORD_HASH_")})
    strong = password_hasher().hash(PASSWORD)
    assert strong.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert extract_parameters(strong) == extract_parameters(PasswordHasher().hash(PASSWORD))

    # ...and still accept a hash made with other parameters, replacing it at the login.
    assert authenticate(user.email, "not-the-password") is None
    assert authenticate(user.email, PASSWORD).id == user.id
    db.session.commit()
    stored = db.session.get(User, user.id).password_hash
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert authenticate(user.email, PASSWORD).id == user.id


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/login", "/auth/login"),
        ("/register", "/auth/register"),
        ("/login?next=/contracts/7", "/auth/login?next=/contracts/7"),
        ("/register?next=%2Fsettings%2F", "/auth/register?next=%2Fsettings%2F"),
    ],
)
def test_the_short_addresses_lead_to_the_auth_pages(client, path, location):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"] == location
