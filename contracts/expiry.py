"""Proposals nobody answered in time: a job marks them expired and tells both parties.

Answers past `expires_at` are refused by `contracts.services` even before the job runs.
"""

from __future__ import annotations

from sqlalchemy import select

import clock
import jobs
from audit.services import record as audit
from contracts.models import PROPOSAL_TRANSITIONS, Proposal, ProposalStatus
from contracts.services import path_to
from database.locking import take_write_lock
from database.states import check_transition
from extensions import db
from notifications.services import notify

EXPIRY_BATCH = 500


def expire_due_proposals() -> int:
    """Mark sent proposals past `expires_at` EXPIRED, audited, both parties told; how many.

    One locking statement: a proposal being answered right now is skipped (its answer
    sees the time and is refused, or got in first), and the next run finds the rest.
    Flushes; the caller commits.
    """
    take_write_lock(db.session)  # SQLite: read fresh rows nobody changes before we write
    due = db.session.scalars(
        select(Proposal)
        .where(Proposal.status == ProposalStatus.SENT, Proposal.expires_at <= clock.now())
        .order_by(Proposal.expires_at, Proposal.id)
        .limit(EXPIRY_BATCH)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    ).all()
    for proposal in due:
        proposal.status = check_transition(
            PROPOSAL_TRANSITIONS, proposal.status, ProposalStatus.EXPIRED, "proposal"
        )
        db.session.flush()
        audit(
            "proposal.expired",
            proposal,
            actor_label="system",
            before={"status": ProposalStatus.SENT.value},
            after={"status": ProposalStatus.EXPIRED.value},
        )
        link = path_to("contracts.proposal", proposal_id=proposal.id)
        notify(
            proposal.student,
            f"The proposal “{proposal.title}” from {proposal.coach.name} expired before you "
            f"answered it. Ask {proposal.coach.name} for a new one if you still want it.",
            link=link,
            subject=f"Coachpact: “{proposal.title}” expired",
        )
        notify(
            proposal.coach,
            f"Your proposal “{proposal.title}” to {proposal.student.name} expired without an "
            "answer. You can send a new one.",
            link=link,
            subject=f"Coachpact: “{proposal.title}” expired",
        )
    return len(due)


@jobs.periodic(jobs.every_minute())
def expire_proposals() -> None:
    expire_due_proposals()
    db.session.commit()
