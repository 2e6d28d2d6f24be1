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
        raise TransitionError(refusal(current, new, what))
    return new


def refusal(current: enum.Enum, new: enum.Enum, what: str) -> str:
    """Why a change cannot happen, in words: "This proposal was accepted already, so it
    can no longer be declined." """
    now = str(current.value).replace("_", " ")
    verb = "was" if now.endswith(("ed", "wn")) else "is"  # accepted, withdrawn: done
    if current == new:
        return f"This {what} {verb} {now} already."
    wanted = "marked a no-show" if new.value == "no_show" else str(new.value).replace("_", " ")
    return f"This {what} {verb} {now} already, so it can no longer be {wanted}."
