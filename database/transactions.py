"""One state change, one transaction: the caller's commit, or nothing kept."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from extensions import db

T = TypeVar("T")


def commit_or_refusal(
    change: Callable[[], T], *refusals: type[Exception]
) -> tuple[T | None, str | None]:
    """Run `change` (a service call that flushes) and commit it: (its result, None).

    A refusal the service raises (one of `refusals`) rolls back everything the
    change did and comes back as its message for the person: (None, message).
    Anything else propagates, and the request's error handler rolls back.
    """
    try:
        result = change()
        db.session.commit()
    except refusals as exc:
        db.session.rollback()
        return None, str(exc)
    return result, None
