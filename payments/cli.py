"""Payment operations from the command line.

`flask --app app payments reconcile --since 3d` adds events the webhook missed to
the inbox; `flask --app app payments charge-due [--ahead 31d]` charges the plan
instalments due now (or, to try a plan out in development, as if the clock
were that far ahead).
"""

from __future__ import annotations

import re
from datetime import timedelta

import click
from flask import Flask
from flask.cli import AppGroup

import clock
import jobs
from payments import plans
from payments.inbox.reconcile import reconcile

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

    @group.command("charge-due")
    @click.option("--ahead", default="0m", show_default=True,
                  help="charge as if the clock were this far ahead (30m, 12h, 31d)")
    def charge_due_command(ahead: str) -> None:
        """Charge every plan instalment due now, once each (the periodic job does it too)."""
        with clock.ahead(parse_age(ahead)), jobs.job_context():
            due = plans.due_instalment_ids()
            outcomes = [plans.charge_instalment(instalment_id) for instalment_id in due]
        click.echo(f"{len(due)} instalment(s) due: " + (", ".join(outcomes) or "none charged"))

    app.cli.add_command(group)
