"""In-app notifications, with an email copy sent once the transaction commits.

Knows `accounts.models.User` for typing only: accounts imports notifications,
never the other way round at run time.
"""

from __future__ import annotations

from flask import Flask
from flask_login import current_user


def init_app(app: Flask) -> None:
    """Register the outbox's jobs and the unread count every page shows (create_app calls it)."""
    import jobs
    from notifications import services, tasks

    # Huey registers a task when the module defining it is imported, so importing this
    # is what puts the outbox's jobs on the queue, not whatever else happens to import it.
    jobs.require_jobs(tasks)

    @app.context_processor
    def unread_notifications() -> dict[str, int]:
        if current_user.is_authenticated:
            return {"unread_notifications": services.unread_count(current_user)}
        return {"unread_notifications": 0}
