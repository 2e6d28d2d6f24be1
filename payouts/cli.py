"""Payout operations: `flask --app app payouts ledger-check`, and `payouts transfer-due
[--ahead 3d]` (what the periodic jobs do, at once; ahead of the clock to try it out)."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

import clock
import jobs
from payments.cli import sandbox_only_ahead
from payouts import ledger, shares, transfers


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

    @group.command("transfer-due")
    @click.option("--ahead", default="0m", show_default=True,
                  help="as if the clock were this far ahead (30m, 12h, 3d): past the hold")
    def transfer_due_command(ahead: str) -> None:
        """Make shares of delivered sessions and send every transfer due, once each (here, not
        through the queue).

        With --ahead, the command runs as if the clock were that far ahead, so what it
        writes carries that time: it is for trying payouts out on demo data against the
        Stripe sandbox, and refused against Stripe itself.
        """
        early = sandbox_only_ahead(ahead, "runs the payouts as if it were later",
                                   "transfer-due", "send what is due now")
        with clock.ahead(early), jobs.job_context():
            shares.make_and_release()
            transfers.settle_refunds()
            due = transfers.due_share_ids()
            outcomes = [transfers.transfer_share(share_id) for share_id in due]
        click.echo(f"{len(due)} transfer(s) due: " + (", ".join(outcomes) or "none sent"))

    app.cli.add_command(group)
