"""State machines: every status change goes through a transition table."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Set
from typing import TypeVar

S = TypeVar("S", bound=enum.Enum)


class TransitionError(Exception):
    """A state change that the table does not allow; the message is for the user."""


def check_transition(table: Mapping[S, Set[S]], current: S, new: S, what: str) -> S:
    """Return `new` if `current -> new` is in `table`, else raise TransitionError."""
    if new not in table.get(current, frozenset()):
        raise TransitionError(
            f"This {what} is {current.value.replace('_', ' ')}; "
            f"it cannot become {new.value.replace('_', ' ')}."
        )
    return new
