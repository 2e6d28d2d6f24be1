"""Where a contract's sessions take place: a video-call address or a place.

Either party sets it; a session may override it (`CoachingSession.location`).
Flushes; the request commits once.
"""

from __future__ import annotations

from flask import url_for

from accounts.models import User
from audit.services import record as audit
from contracts.models import Contract, ContractStatus
from contracts.services import lock_contract
from database.states import TransitionError
from errors import NotFound
from extensions import db
from notifications.services import notify

# Once a contract is over its sessions are history: where they took place stays as it was.
MEETING_PLACE_OPEN = frozenset(
    {ContractStatus.PENDING, ContractStatus.ACTIVE, ContractStatus.PAST_DUE}
)
# The place as quoted in the other party's notification (its message holds 500 characters).
QUOTED_PLACE_CHARS = 150


def set_meeting_place(contract_id: int, user: User, place: str | None) -> Contract:
    """Set (or, with an empty `place`, clear) where the contract's sessions take place.

    Parties only (anyone else gets a 404), while the contract is pending, active or
    past due; the change is audited and told to the other party. Flushes.
    """
    contract = lock_contract(contract_id)
    if contract is None or not contract.party_of(user):
        raise NotFound()
    if contract.status not in MEETING_PLACE_OPEN:
        raise TransitionError(
            f"This contract is {contract.status.value.replace('_', ' ')}; "
            "its meeting place can no longer change."
        )
    before, after = contract.meeting_location, place or None
    if after == before:
        return contract
    contract.meeting_location = after
    db.session.flush()
    audit(
        "contract.meeting_place_set",
        contract,
        actor=user,
        before={"meeting_location": before},
        after={"meeting_location": after},
    )
    other = contract.student if user.id == contract.coach_id else contract.coach
    if after is None:
        told = f"{user.name} cleared the meeting place of “{contract.title}”."
    else:
        quoted = after
        if len(quoted) > QUOTED_PLACE_CHARS:
            quoted = quoted[: QUOTED_PLACE_CHARS - 1] + "…"
        told = f"{user.name} set where the sessions of “{contract.title}” take place: {quoted}"
    notify(
        other,
        told,
        link=url_for("contracts.detail", contract_id=contract.id),
        subject=f"Coachpact: meeting place of “{contract.title[:80]}”",
    )
    return contract
