"""Coach payouts through Stripe Connect: connected accounts, per-session shares,
transfers and reversals, and the ledger check (payouts → payments → contracts)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register payouts' event handler, jobs and commands (create_app calls it after payments)."""
    import jobs
    from payments.inbox import reconcile, table
    from payouts import accounts, ledger, shares, transfers
    from payouts.cli import register_cli

    # payouts sits above payments: it adds its handler to the inbox's table and names its
    # connected accounts to reconcile, since the event pipeline never imports payouts.
    table.register("account.updated", accounts.mirror_account)
    # Stripe lists each connected account's events apart: reconcile asks for every one.
    reconcile.register_connected_accounts(accounts.connected_account_ids)
    # Huey registers a task when the module defining it is imported, so importing these
    # is what puts payouts' jobs on the queue, not whatever else happens to import them.
    jobs.require_jobs(ledger, shares, transfers)
    register_cli(app)
