"""Payout operations: `flask --app app payouts ledger-check`."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from payouts import ledger


def register_cli(app: Flask) -> None:
    group = AppGroup("payouts", help="Coach payouts.")

    @group.command("ledger-check")
    def ledger_check_command() -> None:
        """Check every paid contract's money adds up; exit 1 and list what does not."""
        lines = ledger.check()
        for line in lines:
            click.echo(line)
        if lines:
            raise SystemExit(1)
        click.echo("Every paid contract adds up.")

    app.cli.add_command(group)
