"""Read models of the console's contracts and users: filtered lists and a contract's file."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import (
    ColumnElement,
    Row,
    Subquery,
    and_,
    distinct,
    func,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import InstrumentedAttribute, aliased, selectinload

from accounts.models import Role, User
from admin.listing import (
    Page,
    distinct_values,
    enum_arg,
    int_arg,
    keyset_page,
    query_args,
    text_arg,
)
from admin.queries_audit import AuditRow, entries_about
from contracts.models import (
    CoachingSession,
    Contract,
    ContractStatus,
    PaymentStatus,
    Proposal,
)
from database.text import fold
from extensions import db
from offers.models import Offer
from payments.models import Payment

# --- contracts ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ContractFilters:
    status: ContractStatus | None = None
    payment_status: PaymentStatus | None = None
    currency: str | None = None
    # A contract id ("42" or "#42"), or part of the coach's or the student's name or email.
    q: str | None = None
    user_id: int | None = None  # contracts this user is a party to

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> ContractFilters:
        currency = text_arg(args, "currency", 3)
        return cls(
            status=enum_arg(args, "status", ContractStatus),
            payment_status=enum_arg(args, "payment_status", PaymentStatus),
            currency=currency.lower() if currency else None,
            q=text_arg(args, "q", 100),
            user_id=int_arg(args, "user_id"),
        )

    def as_args(self) -> dict[str, str]:
        return query_args(
            status=self.status,
            payment_status=self.payment_status,
            currency=self.currency,
            q=self.q,
            user_id=self.user_id,
        )

    @property
    def active(self) -> bool:
        return bool(self.as_args())


def person_matches(person: type[User], text: str) -> ColumnElement[bool]:
    """Every word of `text` in the person's name or email, without accents or case."""
    words = fold(text).split() or [""]
    return and_(*(person.search_text.contains(word, autoescape=True) for word in words))


def contract_page(filters: ContractFilters, after: int | None) -> Page[Contract]:
    """Contracts matching `filters`, newest first, with their parties loaded."""
    query = select(Contract).options(selectinload(Contract.coach), selectinload(Contract.student))
    if filters.status:
        query = query.where(Contract.status == filters.status)
    if filters.payment_status:
        query = query.where(Contract.payment_status == filters.payment_status)
    if filters.currency:
        query = query.where(Contract.currency == filters.currency)
    if filters.user_id is not None:
        query = query.where(
            or_(Contract.coach_id == filters.user_id, Contract.student_id == filters.user_id)
        )
    if filters.q:
        coach, student = aliased(User), aliased(User)
        query = (
            query.join(coach, Contract.coach_id == coach.id)
            .join(student, Contract.student_id == student.id)
            .where(_contract_matches(filters.q, coach, student))
        )
    return keyset_page(query, Contract.id, after)


def _contract_matches(q: str, coach: type[User], student: type[User]) -> ColumnElement[bool]:
    by_text = or_(
        person_matches(coach, q),
        person_matches(student, q),
        and_(*(Contract.search_text.contains(word, autoescape=True) for word in fold(q).split())),
    )
    return by_id_or(q, Contract.id, by_text)


def by_id_or(q: str, id_column: InstrumentedAttribute[int], by_text: ColumnElement[bool]
             ) -> ColumnElement[bool]:
    """A search for a number is also a search for that id; "#42" for that id alone."""
    number = q.removeprefix("#")
    if not number.isdigit() or len(number) > 18:
        return by_text
    if q.startswith("#"):
        return id_column == int(number)
    return or_(id_column == int(number), by_text)


def contract_currencies() -> list[str]:
    return distinct_values(Contract.currency)


@dataclass(frozen=True)
class ContractFile:
    """Everything the contract's admin page shows."""

    contract: Contract
    payments: list[Payment]
    sessions: list[CoachingSession]
    audit: list[AuditRow]


def contract_file(contract: Contract) -> ContractFile:
    payments = list(
        db.session.scalars(
            select(Payment).where(Payment.contract_id == contract.id).order_by(Payment.id.desc())
        )
    )
    sessions = list(
        db.session.scalars(
            select(CoachingSession)
            .where(CoachingSession.contract_id == contract.id)
            .order_by(CoachingSession.starts_at, CoachingSession.id)
        )
    )
    # The trail covers what the contract is made of: its proposal, payments and sessions.
    audit = entries_about(
        {
            Contract.__tablename__: [contract.id],
            Proposal.__tablename__: [contract.proposal_id],
            Payment.__tablename__: [p.id for p in payments],
            CoachingSession.__tablename__: [s.id for s in sessions],
        }
    )
    return ContractFile(contract, payments, sessions, audit)


# --- users -------------------------------------------------------------------------------


@dataclass(frozen=True)
class UserFilters:
    role: Role | None = None
    q: str | None = None  # part of the name or email
    user_id: int | None = None  # one user (the audit log links here)

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> UserFilters:
        return cls(
            role=enum_arg(args, "role", Role),
            q=text_arg(args, "q", 100),
            user_id=int_arg(args, "user_id"),
        )

    def as_args(self) -> dict[str, str]:
        return query_args(role=self.role, q=self.q, user_id=self.user_id)

    @property
    def active(self) -> bool:
        return bool(self.as_args())


def _contract_counts() -> Subquery:
    """Per user, how many contracts they are a party to (as coach or as student)."""
    parties = union_all(
        select(Contract.coach_id.label("user_id"), Contract.id.label("contract_id")),
        select(Contract.student_id.label("user_id"), Contract.id.label("contract_id")),
    ).subquery()
    return (
        select(
            parties.c.user_id,
            # Distinct: were a user ever both parties of one contract, it counts once.
            func.count(distinct(parties.c.contract_id)).label("contracts"),
        )
        .group_by(parties.c.user_id)
        .subquery()
    )


def user_page(filters: UserFilters, after: int | None) -> Page[Row[tuple[User, int, int]]]:
    """Users matching `filters`, newest first, each with their number of contracts and
    of offers (a coach's, in any status).

    One query: the counts come from grouped subqueries joined to the page's users.
    """
    counts = _contract_counts()
    offers = (
        select(Offer.coach_id, func.count().label("offers")).group_by(Offer.coach_id).subquery()
    )
    query = (
        select(
            User,
            func.coalesce(counts.c.contracts, 0).label("contracts"),
            func.coalesce(offers.c.offers, 0).label("offers"),
        )
        .outerjoin(counts, counts.c.user_id == User.id)
        .outerjoin(offers, offers.c.coach_id == User.id)
    )
    if filters.role:
        query = query.where(User.role == filters.role)
    if filters.user_id is not None:
        query = query.where(User.id == filters.user_id)
    if filters.q:
        query = query.where(person_matches(User, filters.q))
    return keyset_page(query, User.id, after)

