"""A party's contracts and proposals as their pages list them: filtered, searched, paged."""

from __future__ import annotations

from typing import Any

from flask_sqlalchemy.pagination import Pagination
from sqlalchemy import Select, case, or_, select
from sqlalchemy.orm import aliased, selectinload

import clock
from accounts.models import User
from contracts.models import Contract, ContractStatus, Proposal, ProposalStatus
from contracts.services import party_filter
from database.paging import page_of
from extensions import db

CONTRACTS_PER_PAGE = 20
OPEN_PROPOSALS_SHOWN = 50
CLOSED_PROPOSALS_SHOWN = 10

# The contract list's filters: key → (label, statuses). Every status is in exactly one.
CONTRACT_FILTERS: dict[str, tuple[str, frozenset[ContractStatus]]] = {
    "all": ("All", frozenset()),
    "pending": ("Pending", frozenset({ContractStatus.PENDING})),
    "active": ("Active", frozenset({ContractStatus.ACTIVE})),
    "past_due": ("Past due", frozenset({ContractStatus.PAST_DUE})),
    "completed": ("Completed", frozenset({ContractStatus.COMPLETED})),
    "ended": ("Ended", frozenset({ContractStatus.CANCELLED, ContractStatus.REFUNDED})),
    "disputed": ("Disputed", frozenset({ContractStatus.DISPUTED})),
}



def contracts_page(
    user: User, *, status: str = "all", search: str = "", page: int = 1
) -> Pagination:
    """The user's contracts, newest first, one page of CONTRACTS_PER_PAGE.

    `status` is a key of CONTRACT_FILTERS (an unknown one lists all); `search` matches
    the title or the other party's name, whatever the case.
    """
    other_party = aliased(User)
    query = (
        select(Contract)
        .where(party_filter(Contract, user))
        .join(
            other_party,
            other_party.id
            == case((Contract.coach_id == user.id, Contract.student_id), else_=Contract.coach_id),
        )
        .options(selectinload(Contract.coach), selectinload(Contract.student))
        .order_by(Contract.created_at.desc(), Contract.id.desc())
    )
    statuses = CONTRACT_FILTERS.get(status, CONTRACT_FILTERS["all"])[1]
    if statuses:
        query = query.where(Contract.status.in_(statuses))
    term = search.strip()
    if term:
        query = query.where(
            or_(
                Contract.title.icontains(term, autoescape=True),
                other_party.name.icontains(term, autoescape=True),
            )
        )
    return page_of(query, page, CONTRACTS_PER_PAGE)


def _proposals_of(user: User) -> Select[Any]:
    return (
        select(Proposal)
        .where(party_filter(Proposal, user))
        .options(selectinload(Proposal.coach), selectinload(Proposal.student))
        .order_by(Proposal.created_at.desc(), Proposal.id.desc())
    )


def open_proposals_of(user: User) -> list[Proposal]:
    """Proposals still waiting for the student's answer, newest first."""
    moment = clock.now()
    return list(
        db.session.scalars(
            _proposals_of(user)
            .where(
                Proposal.status == ProposalStatus.SENT,
                or_(Proposal.expires_at.is_(None), Proposal.expires_at > moment),
            )
            .limit(OPEN_PROPOSALS_SHOWN)
        )
    )


def closed_proposals_of(user: User) -> list[Proposal]:
    """The latest proposals that ended without a contract (declined, withdrawn, expired)."""
    moment = clock.now()
    return list(
        db.session.scalars(
            _proposals_of(user)
            .where(
                or_(
                    Proposal.status.in_(
                        [ProposalStatus.DECLINED, ProposalStatus.WITHDRAWN, ProposalStatus.EXPIRED]
                    ),
                    # Past its time but not yet marked by the job.
                    (Proposal.status == ProposalStatus.SENT) & (Proposal.expires_at <= moment),
                )
            )
            .limit(CLOSED_PROPOSALS_SHOWN)
        )
    )
