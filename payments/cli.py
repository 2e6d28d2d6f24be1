"""Payment operations from the command line.

`flask --app app payments reconcile --since 3d` adds events the webhook missed to
the inbox; `flask --app app payments charge-due [--ahead 31d]` charges the plan
instalments due now (or, to try a plan out against the sandbox, those falling due
that far ahead, early: the rows written keep the true time).
"""

from __future__ import annotations

import re
from datetime import timedelta

import click
from flask import Flask, current_app
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


def sandbox_only_ahead(ahead: str, what: str, command: str, plain: str) -> timedelta:
    """`--ahead` as a duration; refused (a usage error) when the app talks to Stripe itself:
    running ahead of the clock is for trying things out against the sandbox."""
    early = parse_age(ahead)
    if early and not current_app.config["STRIPE_USES_SANDBOX"]:
        raise click.UsageError(
            f"--ahead {what}, so it runs only against the Stripe sandbox (no "
            f"STRIPE_SECRET_KEY set), never against Stripe itself. Run {command} without "
            f"--ahead to {plain}."
        )
    return early


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
                  help="also charge what falls due this far ahead (30m, 12h, 31d); "
                       "against the Stripe sandbox only")
    def charge_due_command(ahead: str) -> None:
        """Charge every plan instalment due now, once each (the periodic job does it too).

        With --ahead, instalments falling due by then are charged early, to try a plan
        out against the sandbox. Our clock is not moved: every row written (payments,
        invoices, mail, the audit) carries the true time.
        """
        early = sandbox_only_ahead(ahead, "charges instalments before their date",
                                   "charge-due", "charge what is due now")
        as_of = clock.now() + early
        with jobs.job_context():
            due = plans.due_instalment_ids(as_of=as_of)
            outcomes = [plans.charge_instalment(instalment_id, as_of=as_of)
                        for instalment_id in due]
        click.echo(f"{len(due)} instalment(s) due: " + (", ".join(outcomes) or "none charged"))

    app.cli.add_command(group)
