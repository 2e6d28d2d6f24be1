from __future__ import annotations

import enum
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, validates

from clock import now
from database.text import fold, trigram_index_kwargs
from database.types import UTCDateTime, str_enum
from extensions import Model


class Role(enum.Enum):
    STUDENT = "student"  # accepts proposals, pays, books sessions
    COACH = "coach"  # writes proposals, runs sessions, earns
    ADMIN = "admin"  # oversees payments; created only from the CLI


class User(UserMixin, Model):
    __tablename__ = "users"
    __table_args__ = (
        Index("ix_users_search_text_trgm", "search_text", **trigram_index_kwargs("search_text")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Stored lower-cased, so the unique constraint is case-insensitive on every database.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(str_enum(Role))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # The secret in the user's calendar feed address (`/calendar/<token>.ics`); None until
    # the user turns the feed on, replaced when they reset it (the old address stops working).
    calendar_token: Mapped[str | None] = mapped_column(String(64), unique=True)
    # Part of the id kept in login sessions and remember-me cookies (`get_id`): raised when
    # the password changes, so every other browser logged in as this user is logged out.
    login_version: Mapped[int] = mapped_column(default=0, server_default="0")
    # A coach's public page is /c/<slug> (lowercase letters, digits, hyphens); None until
    # the coach picks one. A slug given up keeps leading there (`OldSlug`).
    slug: Mapped[str | None] = mapped_column(String(60), unique=True)
    # A few sentences on the coach's public page.
    bio: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    # The name and email folded for search (`database.text.fold`): "zoe" finds Zoë.
    # Kept by `_keep_search_text` whenever either is set.
    search_text: Mapped[str] = mapped_column(String(400), default="", server_default="")

    @validates("name", "email")
    def _keep_search_text(self, key: str, value: str) -> str:
        name = value if key == "name" else self.name
        email = value if key == "email" else self.email
        self.search_text = fold(f"{name or ''} {email or ''}")
        return value

    def get_id(self) -> str:
        return f"{self.id}:{self.login_version}"

    @property
    def is_coach(self) -> bool:
        return self.role is Role.COACH

    @property
    def is_student(self) -> bool:
        return self.role is Role.STUDENT

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email} {self.role.value}>"


class OldSlug(Model):
    """A slug a coach used before: /c/<old> redirects (301) to their page for good, and
    nobody else may take it."""

    __tablename__ = "old_slugs"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(60), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    retired_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
