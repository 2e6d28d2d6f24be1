"""`flask --app app payments reconcile-balance --day YYYY-MM-DD`: check a day's balance
transactions at Stripe against our records (the daily job does yesterday)."""

from __future__ import annotations

from datetime import date, timedelta

import click
from flask import Flask

import clock
import jobs
from books.reconcile import reconcile_day

ONE_DAY = timedelta(days=1)


def register_cli(app: Flask) -> None:
    # Joins the `payments` group that payments.init_app registered.
    group = app.cli.commands["payments"]
    assert isinstance(group, click.Group)

    @group.command("reconcile-balance")
    @click.option("--day", "day_text", default=None, metavar="YYYY-MM-DD",
                  help="the UTC day to check [default: yesterday]")
    def reconcile_balance_command(day_text: str | None) -> None:
        """Compare a day's Stripe balance transactions with our records; exit 1 on a difference."""
        try:
            day = date.fromisoformat(day_text) if day_text else clock.now().date() - ONE_DAY
        except ValueError:
            raise click.BadParameter("use a date like 2026-12-06", param_hint="--day") from None
        with jobs.job_context():
            run = reconcile_day(day)
            click.echo(f"{day}: {run.transactions} balance transactions, {run.matched} matched, "
                       f"{len(run.items)} difference(s).")
            if run.error:
                click.echo(f"Stripe could not be asked: {run.error}")
            for item in run.items:
                click.echo(f"  {item.kind.value:15} {item.category:18} {item.note}")
            if run.error or run.items:
                raise SystemExit(1)
