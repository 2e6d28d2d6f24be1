"""Account operations. They flush; the request (or CLI command) commits once."""

from __future__ import annotations

import re
import secrets
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app

from accounts.models import OldSlug, Role, User
from extensions import db

# A public page's address: lowercase letters and digits, words joined by single hyphens.
SLUG_PATTERN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
SLUG_LENGTH = (3, 60)


@lru_cache(maxsize=8)
def _hasher_for(time_cost: int, memory_cost: int, parallelism: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism)


def password_hasher() -> PasswordHasher:
    """The argon2 hasher for the current app's PASSWORD_HASH_* settings.

    It hashes with those parameters; verification reads them from each stored hash, so
    hashes made with other parameters still verify (and are rehashed at the next login).
    """
    config = current_app.config
    return _hasher_for(
        config["PASSWORD_HASH_TIME_COST"],
        config["PASSWORD_HASH_MEMORY_COST"],
        config["PASSWORD_HASH_PARALLELISM"],
    )


class AccountError(Exception):
    """A registration or login that cannot go ahead; the message is for the user."""


class SamePasswordError(AccountError):
    """A new password that is the current one: no change, and nothing gained by it."""


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
        password_hash=password_hasher().hash(password),
        role=role,
        timezone=timezone,
    )
    db.session.add(user)
    db.session.flush()
    return user


def authenticate(email: str, password: str) -> User | None:
    """The user whose email and password match, or None (never says which was wrong)."""
    user = find_user_by_email(email)
    hasher = password_hasher()
    if user is None:
        # Hash anyway so that unknown emails take as long as wrong passwords.
        hasher.hash(password)
        return None
    try:
        hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    # A hash made with other parameters moves to the current ones now the password is known.
    if hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hasher.hash(password)
    return user


def password_matches(user: User, password: str) -> bool:
    try:
        return password_hasher().verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def set_password(user: User, new_password: str) -> None:
    """Store a new password. Outstanding reset links stop working (their fingerprint
    differs), and so does every login made with the old one (`User.login_version`)."""
    user.password_hash = password_hasher().hash(new_password)
    user.login_version += 1
    db.session.flush()


def user_for_login_id(login_id: str) -> User | None:
    """The user a login session's id names (`User.get_id`), if it is still current.

    A session from before the password last changed names an older version: None, and
    that browser is logged out. An id without a version (sessions made before versions
    existed) counts as version 0.
    """
    user_id, _, version = login_id.partition(":")
    try:
        user = db.session.get(User, int(user_id))
        wanted = int(version or 0)
    except ValueError:
        return None
    if user is None or user.login_version != wanted:
        return None
    return user


def change_password(user: User, *, current: str, new: str) -> None:
    """Change a password the user proves they know; refuses a wrong current one, and a new
    one that is the current one (the change would log out the other devices, while anyone
    who knew the password still would)."""
    if not password_matches(user, current):
        raise AccountError("Your current password is wrong.")
    if password_matches(user, new):
        raise SamePasswordError("The new password is your current one: choose another.")
    set_password(user, new)


def update_profile(user: User, *, name: str, timezone: str) -> dict[str, dict[str, str]]:
    """Change name and time zone; returns {"before": ..., "after": ...} of what changed."""
    before = {"name": user.name, "timezone": user.timezone}
    user.name = name.strip()
    user.timezone = timezone
    db.session.flush()
    after = {"name": user.name, "timezone": user.timezone}
    changed = [key for key in before if before[key] != after[key]]
    return {
        "before": {key: before[key] for key in changed},
        "after": {key: after[key] for key in changed},
    }


def slug_refusal(user: User, slug: str) -> str | None:
    """Why `user` cannot take `slug` for their public page, or None when they can.

    A slug is taken while it is anyone else's, now or before (an old slug keeps leading
    to its coach); a coach may take back one of their own old slugs.
    """
    low, high = SLUG_LENGTH
    if not low <= len(slug) <= high:
        return f"An address is {low} to {high} characters long."
    if not SLUG_PATTERN.fullmatch(slug):
        return ("Use lowercase letters, digits and single hyphens between them "
                "(for example maya-lopez).")
    owner = db.session.scalar(db.select(User).where(User.slug == slug))
    if owner is not None and owner.id != user.id:
        return "Another coach has this address; choose another one."
    old = db.session.scalar(db.select(OldSlug).where(OldSlug.slug == slug))
    if old is not None and old.user_id != user.id:
        return "Another coach had this address; choose another one."
    return None


def update_public_page(user: User, *, slug: str, bio: str) -> dict[str, dict[str, str | None]]:
    """Set a coach's public page address and bio; the address given up keeps redirecting.
    Raises AccountError when the slug cannot be had. Returns what changed (audit)."""
    slug = slug.strip().lower()
    refusal = slug_refusal(user, slug)
    if refusal is not None:
        raise AccountError(refusal)
    before = {"slug": user.slug, "bio": user.bio}
    if user.slug != slug:
        # Taking back an old slug of one's own: it is current again, not old.
        db.session.execute(db.delete(OldSlug).where(OldSlug.slug == slug))
        if user.slug is not None:
            db.session.add(OldSlug(slug=user.slug, user_id=user.id))
        user.slug = slug
    user.bio = bio.strip() or None
    db.session.flush()
    after = {"slug": user.slug, "bio": user.bio}
    changed = [key for key in before if before[key] != after[key]]
    return {
        "before": {key: before[key] for key in changed},
        "after": {key: after[key] for key in changed},
    }


def coach_by_slug(slug: str) -> tuple[User | None, str | None]:
    """(the coach whose page this is, None), or (None, their current slug) for a slug
    they used before, or (None, None) for none."""
    coach = db.session.scalar(
        db.select(User).where(User.slug == slug, User.role == Role.COACH)
    )
    if coach is not None:
        return coach, None
    old = db.session.scalar(db.select(OldSlug).where(OldSlug.slug == slug))
    if old is not None:
        current = db.session.get(User, old.user_id)
        if current is not None and current.slug is not None and current.is_coach:
            return None, current.slug
    return None, None


def check_new_email(user: User, new_email: str) -> str:
    """The normalized new address, or AccountError if it is the current one or taken."""
    email = normalize_email(new_email)
    if email == user.email:
        raise AccountError("That is already your email address.")
    if find_user_by_email(email) is not None:
        raise AccountError("An account with this email already exists.")
    return email


def change_email(user: User, new_email: str) -> str:
    """Move the account to a confirmed new address; returns the old one."""
    email = check_new_email(user, new_email)
    old = user.email
    user.email = email
    db.session.flush()
    return old


def renew_calendar_token(user: User) -> None:
    """Turn the calendar feed on, or give it a new address (the old one stops working)."""
    user.calendar_token = secrets.token_urlsafe(32)
    db.session.flush()
