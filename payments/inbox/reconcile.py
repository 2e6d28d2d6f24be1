"""Reconcile: events Stripe has that the inbox lacks (a webhook that never arrived).

Every hour, and on demand with `flask --app app payments reconcile --since 3d`,
events are listed from Stripe and the ones of a handled type that the inbox
lacks are added; the pipeline then applies them like any webhook. Stripe lists
the platform's events and each connected account's apart (the latter with the
Stripe-Account header), so both are asked: the platform, then every connected
account that `payouts` names through `register_connected_accounts` (payments
never imports payouts).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

import clock
import jobs
from extensions import db
from payments import stripe_api
from payments.inbox.processing import process_event_job
from payments.inbox.store import record_event
from payments.inbox.table import handler_for

log = logging.getLogger(__name__)

ConnectedAccounts = Callable[[], Iterable[str]]

_connected_accounts: list[ConnectedAccounts] = []


def register_connected_accounts(source: ConnectedAccounts) -> None:
    """Make reconcile list the events of the connected accounts `source()` names too.

    Registering the same function again changes nothing (create_app runs many times in
    one process in the tests); a second, different source is refused, as one owner of
    connected accounts is expected."""
    if _connected_accounts and _connected_accounts[0] is not source:
        raise ValueError("connected accounts are already named by another function")
    if not _connected_accounts:
        _connected_accounts.append(source)


def reconcile(since: datetime) -> dict[str, int]:
    """Add to the inbox every event of a handled type since `since` that it lacks: the
    platform's and each connected account's.

    The pipeline then applies them like any webhook. Safe to run at any time:
    known events are left as they are. Commits.
    """
    counts = {"added": 0, "known": 0}
    added: list[int] = []
    accounts = [account for source in _connected_accounts for account in source()]
    for account in [None, *accounts]:
        try:
            for event in stripe_api.list_events(
                {"created": {"gte": int(since.timestamp())}, "limit": 100}, account=account
            ):
                if handler_for(event["type"]) is None:
                    continue
                row_id = record_event(event, json.dumps(event))
                if row_id is None:
                    counts["known"] += 1
                else:
                    counts["added"] += 1
                    added.append(row_id)
        except stripe_api.PaymentProviderError:
            if account is None:
                raise
            # An account Stripe will not list (disconnected since, say) stops no other.
            log.warning("reconcile could not list the events of %s", account, exc_info=True)
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
