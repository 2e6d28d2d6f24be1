"""Users, roles, registration and login."""

from __future__ import annotations

from datetime import datetime

from flask import Flask
from flask_login import current_user

from accounts.timezones import DISPLAY_FORMAT, format_local, zone_caption
from clock import now


def init_app(app: Flask) -> None:
    """Register `flask --app app create-admin` and the `localtime` filter (create_app calls it)."""
    from accounts.cli import register_cli

    register_cli(app)
    app.add_template_filter(localtime, "localtime")
    app.add_template_filter(zone_caption_now, "zone_caption")


def localtime(moment: datetime | None, fmt: str | None = None) -> str:
    """A UTC datetime shown in the viewer's own time zone (`fmt`: a strftime format)."""
    zone = current_user.timezone if current_user.is_authenticated else "UTC"
    return format_local(moment, zone, fmt or DISPLAY_FORMAT)


def zone_caption_now(zone_name: str | None) -> str:
    """A zone as named beside times now: "New York (EST)"."""
    return zone_caption(zone_name, now())
