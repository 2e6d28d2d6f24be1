"""Proposals, contracts and their money arithmetic. Never imports stripe."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the proposal expiry job and the template filters (create_app calls it)."""
    import jobs
    from contracts import expiry
    from contracts.money import format_money, method_words

    # Huey registers a task when the module defining it is imported, so importing this
    # is what puts proposal expiry on the queue, not whatever else happens to import it.
    jobs.require_jobs(expiry)
    app.add_template_filter(format_money, "money")
    app.add_template_filter(method_words, "method_words")
