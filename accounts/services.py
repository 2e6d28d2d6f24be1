"""Account operations. They flush; the request (or CLI command) commits once."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from accounts.models import Role, User
from extensions import db

_hasher = PasswordHasher()


class AccountError(Exception):
    """A registration or login that cannot go ahead; the message is for the user."""


def normalize_email(email: str) -> str:
    return email.strip().lower()


def find_user_by_email(email: str) -> User | None:
    return db.session.scalar(db.select(User).filter_by(email=normalize_email(email)))


def create_user(*, email: str, name: str, password: str, role: Role, timezone: str) -> User:
    """Create a user; refuses an email that exists in any letter case."""
    if find_user_by_email(email) is not None:
        raise AccountError("An account with this email already exists.")
    user = User(
        email=normalize_email(email),
        name=name.strip(),
        password_hash=_hasher.hash(password),
        role=role,
        timezone=timezone,
    )
    db.session.add(user)
    db.session.flush()
    return user


def authenticate(email: str, password: str) -> User | None:
    """The user whose email and password match, or None (never says which was wrong)."""
    user = find_user_by_email(email)
    if user is None:
        # Hash anyway so that unknown emails take as long as wrong passwords.
        _hasher.hash(password)
        return None
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user
