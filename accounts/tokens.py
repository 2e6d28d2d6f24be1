"""Signed, expiring links for password resets and email changes.

Each token carries something that changes once the link has done its job (a fingerprint
of the password hash, or the address being replaced), so a link works once: after the
password or the address changed, the same link no longer matches and is refused.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from flask import current_app, url_for
from itsdangerous import BadData, TimestampSigner, URLSafeTimedSerializer

import clock
from accounts.models import User
from accounts.services import normalize_email
from extensions import db

RESET_MAX_AGE = 3600  # seconds: a reset link works for one hour
EMAIL_CHANGE_MAX_AGE = 24 * 3600  # seconds: a confirmation may sit in an inbox for a day


class _ClockSigner(TimestampSigner):
    """Stamps and ages tokens by the app's one clock, so tests move their time as any other."""

    def get_timestamp(self) -> int:
        return int(clock.now().timestamp())


def _serializer(salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt=salt, signer=_ClockSigner)


def _password_fingerprint(user: User) -> str:
    # A digest, so the token never carries any part of the hash itself.
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[-16:]


def password_reset_token(user: User) -> str:
    return _serializer("password-reset").dumps({"user": user.id, "pw": _password_fingerprint(user)})


def user_for_reset_token(token: str) -> User | None:
    """The user a reset link is for, or None if it is forged, over an hour old or used."""
    try:
        data = _serializer("password-reset").loads(token, max_age=RESET_MAX_AGE)
        user = db.session.get(User, int(data["user"]))
        fingerprint = str(data["pw"])
    except (BadData, KeyError, TypeError, ValueError):
        return None
    if user is None or fingerprint != _password_fingerprint(user):
        return None
    return user


def email_change_token(user: User, new_email: str) -> str:
    return _serializer("email-change").dumps(
        {"user": user.id, "new": normalize_email(new_email), "old": user.email}
    )


@dataclass(frozen=True)
class EmailChange:
    user: User
    new_email: str


def email_change_from_token(token: str) -> EmailChange | None:
    """The change a confirmation link asks for, or None if it is forged, expired or used
    (the account's address is no longer the one the link was made for)."""
    try:
        data = _serializer("email-change").loads(token, max_age=EMAIL_CHANGE_MAX_AGE)
        user = db.session.get(User, int(data["user"]))
        old, new = str(data["old"]), str(data["new"])
    except (BadData, KeyError, TypeError, ValueError):
        return None
    if user is None or user.email != old:
        return None
    return EmailChange(user=user, new_email=new)


def unknown_address_work(email: str) -> None:
    """Sign a token as for a real account, so an unknown address costs about the same."""
    fingerprint = hashlib.sha256(email.encode()).hexdigest()[-16:]
    _serializer("password-reset").dumps({"user": 0, "pw": fingerprint})


def mail_link(endpoint: str, **values: str) -> str:
    """An absolute link for a mail, on APP_BASE_URL.

    Never on the request's own host: a client chooses its Host header, and a forged one
    would put a reset link pointing at another site into a real user's inbox.
    """
    return current_app.config["APP_BASE_URL"].rstrip("/") + url_for(endpoint, **values)
