"""Payment records, the Stripe seam, checkout, fulfilment and the webhook."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register payments' event handlers, jobs and commands (create_app calls it)."""
    # Imported here rather than at the top, so that importing one payments module (the
    # sandbox imports stripe_api alone) does not load the whole package.
    import jobs
    from payments import handlers
    from payments.cli import register_cli
    from payments.inbox import processing, reconcile
    from payments.plans import charges
    from payments.refunds import sync

    handlers.register_payment_handlers()
    # Huey registers a task when the module defining it is imported, so importing these
    # is what puts payments' jobs on the queue, not whatever else happens to import them.
    jobs.require_jobs(processing, reconcile, charges, sync)
    register_cli(app)
