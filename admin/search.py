"""The header's search box: people, contracts and payments for one query, in three groups.

How a query is read is `admin.search_terms`; each group is one query of at most
`GROUP_SIZE` + 1 rows (the extra row tells that the group's full list has more).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from accounts.models import User
from admin import payment_queries, search_terms
from contracts.models import Contract
from extensions import db
from payments.models import Payment

GROUP_SIZE = 10


@dataclass
class Group:
    rows: list[Any] = field(default_factory=list)
    more: bool = False  # the group's full list has more than the rows shown


@dataclass
class Results:
    terms: search_terms.Terms
    people: Group = field(default_factory=Group)
    contracts: Group = field(default_factory=Group)
    payments: Group = field(default_factory=Group)

    @property
    def found(self) -> int:
        return len(self.people.rows) + len(self.contracts.rows) + len(self.payments.rows)


def _group(query: Any, scalars: bool = True) -> Group:
    result = db.session.execute(query.limit(GROUP_SIZE + 1))
    rows = list(result.scalars() if scalars else result)
    return Group(rows=rows[:GROUP_SIZE], more=len(rows) > GROUP_SIZE)


def search(q: str) -> Results:
    """What `q` finds, newest first in each group."""
    terms = search_terms.read(q.strip())
    results = Results(terms=terms)
    if not terms.searched:
        return results
    results.people = _group(
        select(User).where(terms.person_condition(GROUP_SIZE + 1)).order_by(User.id.desc())
    )
    results.contracts = _group(
        select(Contract)
        .options(selectinload(Contract.coach), selectinload(Contract.student))
        .where(terms.contract_condition(GROUP_SIZE + 1))
        .order_by(Contract.id.desc())
    )
    results.payments = _group(
        payment_queries.filtered(payment_queries.PaymentFilters())
        .where(terms.payment_condition())
        .order_by(Payment.created_at.desc(), Payment.id.desc()),
        scalars=False,
    )
    return results
