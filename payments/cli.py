"""`flask --app app payments reconcile --since 3d`: catch up on events the webhook missed."""

from __future__ import annotations

import re
from datetime import timedelta

import click
from flask import Flask
from flask.cli import AppGroup

from db_types import utcnow
from payments.services import reconcile

UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def parse_age(text: str) -> timedelta:
    match = re.fullmatch(r"(\d+)([mhd])", text.strip())
    if not match:
        raise click.BadParameter("use a number and a unit, like 30m, 12h or 3d")
    return timedelta(**{UNITS[match.group(2)]: int(match.group(1))})


def register_cli(app: Flask) -> None:
    group = AppGroup("payments", help="Payment operations.")

    @group.command("reconcile")
    @click.option("--since", default="3d", show_default=True, help="how far back: 30m, 12h, 3d")
    def reconcile_command(since: str) -> None:
        """Process recent Stripe events that the webhook missed (safe to repeat, cron-friendly)."""
        # Links in notifications need a URL; outside a request they use APP_BASE_URL.
        with app.test_request_context(base_url=app.config["APP_BASE_URL"]):
            counts = reconcile(utcnow() - parse_age(since))
        summary = ", ".join(f"{name}: {n}" for name, n in sorted(counts.items())) or "no events"
        click.echo(f"Reconciled events since {since}: {summary}")

    app.cli.add_command(group)
