"""Read models of the console's memberships: the filtered list and a membership's file."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Row, Subquery, and_, func, or_, select
from sqlalchemy.orm import aliased, selectinload

import clock
from accounts.models import User
from admin.listing import Page, enum_arg, int_arg, keyset_page, query_args, text_arg
from admin.queries_audit import AuditRow, entries_about
from admin.queries_people import by_id_or, person_matches
from database.text import fold
from offers.memberships import grants_of
from offers.models import CreditGrant, Membership, MembershipOffer, MembershipStatus


@dataclass(frozen=True)
class MembershipFilters:
    status: MembershipStatus | None = None
    # A membership id ("42" or "#42"), or part of the student's or coach's name or email,
    # or of the membership's title.
    q: str | None = None
    user_id: int | None = None  # memberships this user is the student or the coach of

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> MembershipFilters:
        return cls(
            status=enum_arg(args, "status", MembershipStatus),
            q=text_arg(args, "q", 100),
            user_id=int_arg(args, "user_id"),
        )

    def as_args(self) -> dict[str, str]:
        return query_args(status=self.status, q=self.q, user_id=self.user_id)

    @property
    def active(self) -> bool:
        return bool(self.as_args())


def credits_holding(moment: datetime) -> Subquery:
    """Per membership, the sessions granted by the paid invoices whose period holds
    `moment`: a grouped subquery, to join to the memberships shown."""
    return (
        select(CreditGrant.membership_id, func.sum(CreditGrant.sessions).label("sessions"))
        .where(CreditGrant.period_start <= moment, CreditGrant.period_end > moment)
        .group_by(CreditGrant.membership_id)
        .subquery()
    )


def membership_page(
    filters: MembershipFilters, after: int | None
) -> Page[Row[tuple[Membership, int]]]:
    """Memberships matching `filters`, newest first, each with its running period's
    credits; three statements whatever the page's size (the page, its students, its
    coaches)."""
    credits = credits_holding(clock.now())
    query = (
        select(Membership, func.coalesce(credits.c.sessions, 0).label("credits"))
        .outerjoin(credits, credits.c.membership_id == Membership.id)
        .options(selectinload(Membership.student), selectinload(Membership.coach))
    )
    if filters.status:
        query = query.where(Membership.status == filters.status)
    if filters.user_id is not None:
        query = query.where(or_(Membership.coach_id == filters.user_id,
                                Membership.student_id == filters.user_id))
    if filters.q:
        coach, student = aliased(User), aliased(User)
        query = (
            query.join(coach, Membership.coach_id == coach.id)
            .join(student, Membership.student_id == student.id)
            .where(_membership_matches(filters.q, coach, student))
        )
    return keyset_page(query, Membership.id, after)


def _membership_matches(q: str, coach: type[User], student: type[User]) -> ColumnElement[bool]:
    # Titles have no folded copy: they are compared lower-cased (accents as typed).
    title = func.lower(Membership.title)
    by_text = or_(
        person_matches(coach, q),
        person_matches(student, q),
        and_(*(title.contains(word, autoescape=True) for word in fold(q).split())),
    )
    return by_id_or(q, Membership.id, by_text)


@dataclass(frozen=True)
class MembershipFile:
    """Everything the membership's admin page shows."""

    membership: Membership
    offer: MembershipOffer
    grants: list[CreditGrant]
    credits: int  # granted for the period running now
    audit: list[AuditRow]


def membership_file(membership: Membership) -> MembershipFile:
    grants = grants_of(membership)
    moment = clock.now()
    credits = sum(g.sessions for g in grants if g.period_start <= moment < g.period_end)
    audit = entries_about({Membership.__tablename__: [membership.id]})
    return MembershipFile(membership, membership.offer, grants, credits, audit)
