"""Stripe's books: each payment's Stripe fee, and the daily reconciliation of Stripe's
balance transactions with our payments, refunds, disputes, transfers and reversals.

It sits above payments and payouts (it reads both); neither imports it.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the books' jobs and command (create_app calls it after payouts)."""
    import jobs
    from books import cli, fees, reconcile

    jobs.require_jobs(fees, reconcile)
    cli.register_cli(app)
