"""Reconcile: events Stripe has that the inbox lacks (a webhook that never arrived).

Every hour, and on demand with `flask --app app payments reconcile --since 3d`,
events are listed from Stripe and the ones of a handled type that the inbox
lacks are added; the pipeline then applies them like any webhook.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta

import clock
import jobs
from extensions import db
from payments import stripe_api
from payments.inbox.processing import process_event_job
from payments.inbox.store import record_event
from payments.inbox.table import handler_for

log = logging.getLogger(__name__)


def reconcile(since: datetime) -> dict[str, int]:
    """Add to the inbox every event of a handled type since `since` that it lacks.

    The pipeline then applies them like any webhook. Safe to run at any time:
    known events are left as they are. Commits.
    """
    counts = {"added": 0, "known": 0}
    added: list[int] = []
    for event in stripe_api.list_events({"created": {"gte": int(since.timestamp())}, "limit": 100}):
        if handler_for(event["type"]) is None:
            continue
        row_id = record_event(event, json.dumps(event))
        if row_id is None:
            counts["known"] += 1
        else:
            counts["added"] += 1
            added.append(row_id)
    db.session.commit()
    for row_id in added:
        jobs.enqueue(process_event_job, row_id)
    return counts


@jobs.periodic(jobs.hourly_at(17))
def reconcile_hourly() -> None:
    """Ask Stripe for the last few hours' events, in case a webhook never arrived."""
    counts = reconcile(clock.now() - timedelta(hours=3))
    if counts["added"]:
        log.warning("reconcile added %s events the webhook never delivered", counts["added"])
