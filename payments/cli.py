"""`flask --app app payments reconcile --since 3d`: add events the webhook missed to the inbox."""

from __future__ import annotations

import re
from datetime import timedelta

import click
from flask import Flask
from flask.cli import AppGroup

import clock
from payments.events import reconcile

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
        """Add recent Stripe events the webhook missed to the inbox (safe to repeat)."""
        counts = reconcile(clock.now() - parse_age(since))
        click.echo(
            f"Events since {since}: {counts['added']} added to the inbox, "
            f"{counts['known']} already there."
        )

    app.cli.add_command(group)
