"""Users, roles, registration and login."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register `flask --app app create-admin` (create_app calls it)."""
    from accounts.cli import register_cli

    register_cli(app)
