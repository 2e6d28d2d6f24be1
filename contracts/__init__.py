"""Proposals, contracts and their money arithmetic. Never imports stripe."""

from __future__ import annotations

from datetime import datetime

from flask import Flask
from flask_login import current_user

from contracts.localtime import DISPLAY_FORMAT, format_local


def init_app(app: Flask) -> None:
    """Register the proposal expiry job and the template filters (create_app calls it)."""
    import jobs
    from contracts import expiry
    from contracts.ics import web_address
    from contracts.money import format_money, method_words

    # Huey registers a task when the module defining it is imported, so importing this
    # is what puts proposal expiry on the queue, not whatever else happens to import it.
    jobs.require_jobs(expiry)
    app.add_template_filter(format_money, "money")
    app.add_template_filter(localtime, "localtime")
    app.add_template_filter(method_words, "method_words")
    app.add_template_filter(web_address, "web_address")


def localtime(moment: datetime | None, fmt: str | None = None) -> str:
    """A UTC datetime shown in the viewer's own time zone (`fmt`: a strftime format)."""
    zone = current_user.timezone if current_user.is_authenticated else "UTC"
    return format_local(moment, zone, fmt or DISPLAY_FORMAT)
