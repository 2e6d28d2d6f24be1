"""`flask --app app admin ...`: the console's commands."""

from __future__ import annotations

from datetime import datetime, timedelta

import click
from flask import Flask
from flask.cli import AppGroup

from admin import analytics
from extensions import db

group = AppGroup("admin", help="Admin console operations.")

DAY = click.DateTime(formats=["%Y-%m-%d"])


@group.command("rollup")
@click.option("--since", type=DAY, required=True, help="first UTC day to roll up (YYYY-MM-DD)")
@click.option(
    "--until", type=DAY, default=None, help="the UTC day to stop before (default: today)"
)
def rollup(since: datetime, until: datetime | None) -> None:
    """(Re)compute the daily payment figures of the closed UTC days from --since to --until."""
    today = analytics.today()
    first, stop = since.date(), min(until.date(), today) if until else today
    if until is not None and until.date() <= first:
        raise click.UsageError("--until must be after --since (it is the first day left out).")
    if first >= today:
        raise click.UsageError(f"Only closed days are rolled up: --since must be before {today}.")
    written = analytics.rollup(first, stop)
    db.session.commit()
    last = stop - timedelta(days=1)
    click.echo(f"Wrote {written} day × currency × source rows for {first} to {last} (UTC days).")


def register_cli(app: Flask) -> None:
    app.cli.add_command(group)
