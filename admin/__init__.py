"""The admin console: payments, events, reviews, the audit trail and analytics."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the console's nightly job and commands (create_app calls it last)."""
    import jobs
    from admin import analytics
    from admin.cli import register_cli

    # Huey registers a task when the module defining it is imported, so importing this
    # is what puts the nightly rollup on the queue, not whatever else happens to import it.
    jobs.require_jobs(analytics)
    register_cli(app)
