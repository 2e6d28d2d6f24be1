"""The one clock. Every module asks `clock.now()`; tests move time here and nowhere else.

Column defaults use `clock.now` too, so a row written while a test has moved
the clock carries the moved time, as it would in production at that moment.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

_frozen: datetime | None = None
_offset = timedelta(0)


def now() -> datetime:
    """The current time, timezone-aware in UTC."""
    if _frozen is not None:
        return _frozen
    return datetime.now(UTC) + _offset


def freeze(moment: datetime) -> None:
    """Stop the clock at `moment` (aware) until `reset()`; for tests."""
    global _frozen
    if moment.tzinfo is None:
        raise ValueError("freeze() needs an aware datetime")
    _frozen = moment.astimezone(UTC)


def advance(delta: timedelta) -> None:
    """Move the clock forward by `delta`, frozen or running; for tests."""
    global _frozen, _offset
    if _frozen is not None:
        _frozen += delta
    else:
        _offset += delta


@contextmanager
def ahead(delta: timedelta) -> Iterator[None]:
    """Run a block as if the clock were `delta` ahead, then put it back as it was
    (the `--ahead` commands that try plans and payouts out in development)."""
    advance(delta)
    try:
        yield
    finally:
        advance(-delta)


def reset() -> None:
    """Back to the real time."""
    global _frozen, _offset
    _frozen = None
    _offset = timedelta(0)
