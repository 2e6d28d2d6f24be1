"""Account settings (profile, password, email, calendar feed) and password reset by mail."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from accounts.models import User
from tests.conftest import PASSWORD, login

NEW_PASSWORD = "a-brand-new-passphrase"


def mails(db, recipient: str | None = None) -> list:
    from notifications.models import OutboxMail

    db.session.expire_all()
    query = select(OutboxMail).order_by(OutboxMail.id)
    if recipient is not None:
        query = query.where(OutboxMail.recipient == recipient)
    return list(db.session.scalars(query))


def link_in(mail) -> str:
    """The path of the one link in a mail (links are absolute, on APP_BASE_URL)."""
    (url,) = re.findall(r"https?://\S+", mail.body)
    assert url.startswith("http://127.0.0.1:5000/")
    return urlsplit(url).path


def user_row(db, user_id: int) -> User:
    db.session.expire_all()
    return db.session.get(User, user_id)


def can_log_in(app, email: str, password: str) -> bool:
    # Requests share the test's app context and so its `g`, where the CSRF token and the
    # logged-in user are cached: another browser gets an app context of its own.
    with app.app_context():
        client = app.test_client()
        response = client.submit("/auth/login", {"email": email, "password": password})
        return response.status_code == 302


def without_csrf(html: str) -> str:
    # The CSRF token is signed with a timestamp; everything else must be byte for byte equal.
    return re.sub(r'(name="csrf-token" content|name="csrf_token"[^>]*value)="[^"]+"', "", html)


# --- password reset ------------------------------------------------------------


def ask_reset(client, email: str):
    return client.submit("/auth/forgot", {"email": email})


def reset_link(client, db, email: str) -> str:
    assert ask_reset(client, email).status_code == 302
    return link_in(mails(db, email.lower())[-1])


def test_login_page_links_to_password_reset(client):
    html = client.get("/auth/login").get_data(as_text=True)
    assert 'href="/auth/forgot"' in html and "Forgot your password?" in html


def test_reset_link_works_once(app, client, db, make_user):
    user = make_user(email="ana@example.com")
    path = reset_link(client, db, "Ana@Example.com")
    assert path.startswith("/auth/reset/")
    assert client.get(path).status_code == 200

    response = client.submit(path, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 302 and response.headers["Location"] == "/auth/login"
    assert can_log_in(app, "ana@example.com", NEW_PASSWORD)
    assert not can_log_in(app, "ana@example.com", PASSWORD)
    assert [m.subject for m in mails(db, "ana@example.com")] == [
        "Reset your Coachpact password",
        "Your Coachpact password was changed",
    ]

    # The password changed, so the same link no longer matches: it is refused.
    other = "yet-another-password"
    again = client.submit(path, {"password": other, "confirm": other})
    assert again.status_code == 400
    assert "This link is invalid or has expired" in again.get_data(as_text=True)
    assert can_log_in(app, "ana@example.com", NEW_PASSWORD)
    assert user_row(db, user.id).email == "ana@example.com"


def test_reset_link_expires_after_one_hour(app, client, db, make_user, clock):
    make_user(email="ana@example.com")
    clock.freeze(datetime(2025, 3, 1, 9, 0, tzinfo=UTC))
    path = reset_link(client, db, "ana@example.com")

    clock.advance(timedelta(hours=1))
    assert client.get(path).status_code == 200  # exactly one hour old: still good
    clock.advance(timedelta(seconds=1))
    response = client.submit(path, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 400
    assert "invalid or has expired" in response.get_data(as_text=True)
    assert can_log_in(app, "ana@example.com", PASSWORD)


@pytest.mark.parametrize(
    "token",
    ["garbage", "eyJ1c2VyIjoxfQ.Z0000.AAAAAAAAAAAAAAAAAAAAAAAAAAA"],
)
def test_a_garbage_token_is_refused(app, client, make_user, token):
    make_user(email="ana@example.com")
    response = client.submit(
        f"/auth/reset/{token}", {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    )
    assert response.status_code == 400
    assert 'href="/auth/forgot"' in response.get_data(as_text=True)
    assert can_log_in(app, "ana@example.com", PASSWORD)


def test_a_token_of_another_purpose_or_key_is_refused(app, client, db, make_user):
    from itsdangerous import URLSafeTimedSerializer

    user = make_user(email="ana@example.com")
    with app.test_request_context():
        from accounts.tokens import email_change_token, password_reset_token

        right = password_reset_token(db.session.get(User, user.id))
        # An email-change token for the same user is signed with another salt.
        other_salt = email_change_token(db.session.get(User, user.id), "x@example.com")
    forged = URLSafeTimedSerializer("not-our-key", salt="password-reset").dumps(
        URLSafeTimedSerializer(app.secret_key, salt="password-reset").loads(right)
    )
    for token in (other_salt, forged):
        assert client.get(f"/auth/reset/{token}").status_code == 400
    assert client.get(f"/auth/reset/{right}").status_code == 200


def test_unknown_address_gets_the_same_answer_and_no_mail(client, db, make_user):
    make_user(email="ana@example.com")
    known = ask_reset(client, "ana@example.com")
    known_page = client.get(known.headers["Location"]).get_data(as_text=True)
    unknown = ask_reset(client, "nobody@example.com")
    unknown_page = client.get(unknown.headers["Location"]).get_data(as_text=True)

    assert (known.status_code, known.headers["Location"]) == (
        unknown.status_code,
        unknown.headers["Location"],
    )
    assert known.get_data() == unknown.get_data()
    assert without_csrf(known_page) == without_csrf(unknown_page)
    assert "If an account exists for that address" in unknown_page
    assert [m.recipient for m in mails(db)] == ["ana@example.com"]


def test_reset_requests_are_rate_limited_per_address(client, db, make_user):
    make_user(email="ana@example.com")
    statuses = [ask_reset(client, "ana@example.com").status_code for _ in range(4)]
    assert statuses == [302, 302, 302, 429]
    assert len(mails(db, "ana@example.com")) == 3
    # The same address in another case is the same address.
    assert ask_reset(client, "ANA@example.com").status_code == 429
    assert len(mails(db, "ana@example.com")) == 3


def test_reset_requests_are_rate_limited_per_ip(client, db):
    statuses = [ask_reset(client, f"someone{n}@example.com").status_code for n in range(6)]
    assert statuses == [302] * 5 + [429]


def test_reset_form_checks_the_new_password(app, client, db, make_user):
    make_user(email="ana@example.com")
    path = reset_link(client, db, "ana@example.com")
    short = client.submit(path, {"password": "short", "confirm": "short"})
    differ = client.submit(path, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD + "x"})
    assert "Field must be between 10 and 128" in short.get_data(as_text=True)
    assert "Passwords differ." in differ.get_data(as_text=True)
    assert can_log_in(app, "ana@example.com", PASSWORD)


# --- settings: login, profile --------------------------------------------------


def test_settings_need_a_login(client):
    response = client.get("/settings/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/auth/login?next=")
    assert client.submit("/settings/calendar").status_code == 302


def test_profile_change_shows_times_in_the_new_zone(client, db, make_user, clock):
    from notifications.models import Notification

    user = make_user(name="Ana Ruiz", timezone="UTC")
    clock.freeze(datetime(2025, 1, 15, 12, 0, tzinfo=UTC))
    db.session.add(Notification(user_id=user.id, message="Your contract is paid."))
    db.session.commit()
    login(client, user)
    assert "15 Jan 2025, 12:00 UTC" in client.get("/notifications/").get_data(as_text=True)

    response = client.submit("/settings/", {"name": "Ana María Ruiz", "timezone": "Asia/Tokyo"})
    assert response.status_code == 302
    page = client.get("/settings/").get_data(as_text=True)
    assert "Times are shown in Asia/Tokyo." in page
    assert "Your time now: 15 Jan 2025, 21:00 JST" in page
    assert "15 Jan 2025, 21:00 JST" in client.get("/notifications/").get_data(as_text=True)
    row = user_row(db, user.id)
    assert (row.name, row.timezone) == ("Ana María Ruiz", "Asia/Tokyo")

    from audit.models import AuditEntry

    entry = db.session.scalar(select(AuditEntry).filter_by(action="user.profile_changed"))
    assert entry.object_id == user.id and entry.actor_id == user.id
    assert entry.before == {"name": "Ana Ruiz", "timezone": "UTC"}
    assert entry.after == {"name": "Ana María Ruiz", "timezone": "Asia/Tokyo"}


def test_profile_refuses_an_unknown_zone_and_changes_nothing(client, db, make_user):
    user = make_user(name="Ana Ruiz")
    login(client, user)
    response = client.submit("/settings/", {"name": "", "timezone": "Mars/Olympus"})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "This field is required." in page and "Not a valid choice" in page
    row = user_row(db, user.id)
    assert (row.name, row.timezone) == ("Ana Ruiz", "UTC")


# --- settings: password --------------------------------------------------------


def change_password(client, current: str, new: str = NEW_PASSWORD, repeat: str | None = None):
    return client.submit(
        "/settings/password",
        {"current_password": current, "new_password": new, "confirm_password": repeat or new},
    )


def test_wrong_current_password_is_refused(app, client, db, make_user):
    user = make_user(email="ana@example.com")
    login(client, user)
    response = change_password(client, "not-my-password")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Your current password is wrong." in page
    # Only the password form shows an error.
    assert page.count("invalid-feedback") == 1
    assert can_log_in(app, "ana@example.com", PASSWORD)
    assert not can_log_in(app, "ana@example.com", NEW_PASSWORD)
    assert mails(db) == []


def test_new_password_length_and_repeat_are_checked(app, client, make_user):
    user = make_user(email="ana@example.com")
    login(client, user)
    short = change_password(client, PASSWORD, "short").get_data(as_text=True)
    long = change_password(client, PASSWORD, "x" * 129).get_data(as_text=True)
    differ = change_password(client, PASSWORD, NEW_PASSWORD, NEW_PASSWORD + "!")
    assert all("Field must be between 10 and 128" in page for page in (short, long))
    assert "Passwords differ." in differ.get_data(as_text=True)
    assert can_log_in(app, "ana@example.com", PASSWORD)


def test_the_current_password_is_refused_as_the_new_one(app, client, db, make_user):
    user = make_user(email="ana@example.com")
    version = user.login_version
    login(client, user)
    response = change_password(client, PASSWORD, PASSWORD)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "The new password is your current one: choose another." in page
    assert page.count("invalid-feedback") == 1
    assert user_row(db, user.id).login_version == version
    assert mails(db) == []


def test_right_current_password_changes_it(app, client, db, make_user):
    user = make_user(email="ana@example.com")
    login(client, user)
    response = change_password(client, PASSWORD)
    assert response.status_code == 302
    assert "Your password is changed." in client.get("/settings/").get_data(as_text=True)
    assert can_log_in(app, "ana@example.com", NEW_PASSWORD)
    assert not can_log_in(app, "ana@example.com", PASSWORD)
    assert user_row(db, user.id).password_hash.startswith("$argon2")
    (notice,) = mails(db, "ana@example.com")
    assert notice.subject == "Your Coachpact password was changed"


def test_a_password_change_logs_out_every_other_browser_but_this_one(app, client, db, make_user):
    user = make_user(email="ana@example.com")
    laptop = app.test_client()
    with app.app_context():  # another browser (see can_log_in)
        login(laptop, user)
        assert laptop.get("/settings/").status_code == 200
    login(client, user)
    assert change_password(client, PASSWORD).status_code == 302
    assert user_row(db, user.id).login_version == 1
    with app.app_context():
        # The laptop's session names the old login version: it is logged out.
        answer = laptop.get("/settings/")
        assert answer.status_code == 302 and "/auth/login" in answer.headers["Location"]
    # The browser that changed it stays logged in.
    assert client.get("/settings/").status_code == 200


def test_a_session_id_from_before_login_versions_still_counts_as_version_0(app, db, make_user):
    from accounts.services import user_for_login_id

    user = make_user(email="ana@example.com")
    assert user_for_login_id(str(user.id)).id == user.id
    assert user_for_login_id(f"{user.id}:0").id == user.id
    assert user_for_login_id(f"{user.id}:1") is None
    assert user_for_login_id("not-a-number") is None


def test_a_password_change_voids_an_outstanding_reset_link(app, client, db, make_user):
    user = make_user(email="ana@example.com")
    with app.app_context():  # another browser (see can_log_in)
        path = reset_link(app.test_client(), db, "ana@example.com")
    login(client, user)
    assert change_password(client, PASSWORD).status_code == 302
    assert client.get(path).status_code == 400


# --- settings: email -----------------------------------------------------------


def ask_email_change(client, new_email: str, password: str = PASSWORD):
    return client.submit("/settings/email", {"new_email": new_email, "email_password": password})


def test_email_changes_only_when_the_link_is_opened(client, db, make_user):
    user = make_user(email="ana@example.com")
    login(client, user)
    response = ask_email_change(client, "Ana.New@Example.com")
    assert response.status_code == 302
    assert user_row(db, user.id).email == "ana@example.com"  # nothing changed yet
    (confirmation,) = mails(db, "ana.new@example.com")
    assert confirmation.subject == "Confirm your new Coachpact email address"

    response = client.get(link_in(confirmation))
    assert response.status_code == 302
    assert user_row(db, user.id).email == "ana.new@example.com"
    page = client.get("/settings/").get_data(as_text=True)
    assert "Your email address is now ana.new@example.com." in page
    (notice,) = mails(db, "ana@example.com")
    assert "ana.new@example.com" in notice.body

    from audit.models import AuditEntry

    entry = db.session.scalar(select(AuditEntry).filter_by(action="user.email_changed"))
    assert (entry.before, entry.after) == (
        {"email": "ana@example.com"},
        {"email": "ana.new@example.com"},
    )


def test_an_email_link_used_twice_is_refused(client, db, make_user):
    user = make_user(email="ana@example.com")
    login(client, user)
    ask_email_change(client, "first@example.com")
    ask_email_change(client, "second@example.com")
    first = link_in(mails(db, "first@example.com")[0])
    second = link_in(mails(db, "second@example.com")[0])
    client.get(first)
    assert user_row(db, user.id).email == "first@example.com"

    # Both links were made for the address that is now gone: neither works any more.
    for path in (first, second):
        client.get(path)
        assert user_row(db, user.id).email == "first@example.com"
    page = client.get("/settings/").get_data(as_text=True)
    assert "This confirmation link is invalid, expired or already used." in page


def test_an_email_link_for_an_address_taken_meanwhile_is_refused(client, db, make_user):
    user = make_user(email="ana@example.com")
    login(client, user)
    ask_email_change(client, "wanted@example.com")
    path = link_in(mails(db, "wanted@example.com")[0])
    make_user(email="wanted@example.com")

    response = client.get(path, follow_redirects=True)
    assert "wanted@example.com now belongs to another account" in response.get_data(as_text=True)
    assert user_row(db, user.id).email == "ana@example.com"
    assert mails(db, "ana@example.com") == []


def test_an_email_link_expires_after_a_day(client, db, make_user, clock):
    user = make_user(email="ana@example.com")
    clock.freeze(datetime(2025, 3, 1, 9, 0, tzinfo=UTC))
    login(client, user)
    ask_email_change(client, "new@example.com")
    path = link_in(mails(db, "new@example.com")[0])
    clock.advance(timedelta(hours=24, seconds=1))
    client.get(path)
    assert user_row(db, user.id).email == "ana@example.com"


def test_an_email_link_only_works_for_its_own_account(app, client, db, make_user):
    ana = make_user(email="ana@example.com")
    login(client, ana)
    ask_email_change(client, "new@example.com")
    path = link_in(mails(db, "new@example.com")[0])

    with app.app_context():  # another browser (see can_log_in)
        other = app.test_client()
        login(other, make_user(email="eve@example.com"))
        other.get(path)
    assert user_row(db, ana.id).email == "ana@example.com"
    assert db.session.scalar(select(User).filter_by(email="new@example.com")) is None


@pytest.mark.parametrize(
    ("new_email", "password", "message"),
    [
        ("new@example.com", "wrong-password", "Your current password is wrong."),
        ("not-an-email", PASSWORD, "Invalid email address."),
        ("ANA@example.com", PASSWORD, "That is already your email address."),
        ("taken@example.com", PASSWORD, "An account with this email already exists."),
    ],
)
def test_email_change_requests_that_are_refused(client, db, make_user, new_email, password,
                                                message):
    user = make_user(email="ana@example.com")
    make_user(email="taken@example.com")
    login(client, user)
    response = ask_email_change(client, new_email, password)
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert mails(db) == []
    assert user_row(db, user.id).email == "ana@example.com"


# --- settings: calendar feed ---------------------------------------------------


def test_calendar_feed_turns_on_and_resets(app, client, db, make_user):
    user = make_user()
    login(client, user)
    page = client.get("/settings/").get_data(as_text=True)
    assert "Turn on<span class=\"visually-hidden\"> the</span> calendar feed" in page
    assert user_row(db, user.id).calendar_token is None

    assert client.submit("/settings/calendar").status_code == 302
    first = user_row(db, user.id).calendar_token
    assert first and len(first) >= 40
    page = client.get("/settings/").get_data(as_text=True)
    assert "Your calendar feed is on." in page
    if "calendar.feed" in app.view_functions:
        assert f"{first}" in page and 'readonly' in page

    client.submit("/settings/calendar")
    second = user_row(db, user.id).calendar_token
    assert second and second != first
    assert "the old one no longer works" in client.get("/settings/").get_data(as_text=True)


def test_an_email_link_opened_while_logged_out_works_after_login(client, db, make_user):
    user = make_user(email="ana@example.com")
    login(client, user)
    ask_email_change(client, "new@example.com")
    path = link_in(mails(db, "new@example.com")[0])
    client.submit("/auth/logout")

    response = client.get(path)
    assert response.status_code == 302 and response.headers["Location"].startswith("/auth/login")
    assert user_row(db, user.id).email == "ana@example.com"
    response = client.submit(
        response.headers["Location"], {"email": "ana@example.com", "password": PASSWORD}
    )
    assert response.headers["Location"] == path
    client.get(path)
    assert user_row(db, user.id).email == "new@example.com"
