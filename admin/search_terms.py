"""What a search in the admin console asks for: the people, contracts and payments it means.

One reading serves the header's search box (`admin.search`) and the payments list's
search (`admin.payment_queries`), so both find the same payments for the same words.

A query is read, in this order, as
- one of Stripe's ids, by its prefix (`pi_`, `cs_`, `ch_`, `cus_`, `re_`, `dp_`, `tr_`,
  `acct_`, `evt_`, ...): an exact look-up by a unique index, in the table that keeps
  that kind of id;
- one of our invoice numbers (`CP-2026-000003`), exact;
- a contract's number (`42`, `#42`) or a manual payment's reference (`manual-7`);
- text: every word must be in a person's name or email, or in a contract's title,
  compared folded (`database.text.fold`: no accents, no case). On PostgreSQL trigram
  indexes find the words anywhere in the text.
A single word is also compared with the end of each payment's Checkout session and
payment intent ids and with manual payments' references: the reference printed on the
success page and the receipt (`Payment.reference`).

What a query matches directly brings its neighbours: a person brings their contracts,
a contract its payments; a payment found by an id brings its contract, and an id
brings that contract's two parties.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, false, func, select, union_all

from accounts.models import User
from contracts.models import Contract
from database.text import Ending, fold
from extensions import db
from payments.models import (
    REFERENCE_LENGTH,
    Dispute,
    Invoice,
    Payment,
    Refund,
    StripeCustomer,
    WebhookEvent,
)
from payouts.models import ConnectedAccount, SessionShare, TransferReversal

MAX_LENGTH = 200  # longer than any id, email, name or title we keep
MIN_TEXT = 3  # a trigram: shorter text would read whole tables
INVOICE_NUMBER = re.compile(r"^cp-(\d{4})-(\d{1,6})$", re.IGNORECASE)
CONTRACT_NUMBER = re.compile(r"^#?(\d{1,18})$")
MANUAL_REFERENCE = re.compile(r"^manual-(\d{1,18})$", re.IGNORECASE)
# The end of an id a search compares (the reference we print has eight characters): letters,
# digits and `_` only, so an email or a phrase does not read the ids' trigram indexes.
REFERENCE_SHAPE = re.compile(r"^[A-Za-z0-9_]{6,64}$")


@dataclass
class Terms:
    """A query's reading: the ids of what it matches directly, as subqueries."""

    q: str
    reading: str = ""  # how the query was read, in words ("a Stripe refund id")
    problem: str | None = None  # why nothing was searched, in words
    people: list[Select[Any]] = field(default_factory=list)  # of User.id
    contracts: list[Select[Any]] = field(default_factory=list)  # of Contract.id
    payments: list[Select[Any]] = field(default_factory=list)  # of Payment.id
    # A contract found by an id (not by its title) shows its two parties.
    with_parties: bool = False

    @property
    def searched(self) -> bool:
        return self.problem is None

    # --- what the groups show -----------------------------------------------------------

    def _contract_ids(self) -> list[Select[Any]]:
        """Contracts matched, and the contracts of the people matched."""
        ids = list(self.contracts)
        if self.people:
            people = _union(self.people)
            # As student, then as coach: two index look-ups, where an OR would read the table.
            ids.append(select(Contract.id).where(Contract.student_id.in_(people)))
            ids.append(select(Contract.id).where(Contract.coach_id.in_(people)))
        return ids

    def contract_condition(self, newest: int | None = None) -> ColumnElement[bool]:
        """Contracts matched; with `newest`, only that many of the highest ids."""
        ids = self._contract_ids()
        if self.payments:
            ids.append(select(Payment.contract_id).where(Payment.id.in_(_union(self.payments))))
        return Contract.id.in_(_newest(_union(ids), newest)) if ids else false()

    def payment_condition(self) -> ColumnElement[bool]:
        # One IN of one union: PostgreSQL joins it by the primary key, where an OR of two
        # INs would read every payment.
        ids = list(self.payments)
        contract_ids = self._contract_ids()
        if contract_ids:
            ids.append(select(Payment.id).where(Payment.contract_id.in_(_union(contract_ids))))
        return Payment.id.in_(_union(ids)) if ids else false()

    def person_condition(self, newest: int | None = None) -> ColumnElement[bool]:
        """People matched; with `newest`, only that many of the highest ids."""
        ids = list(self.people)
        # The parties of a payment found by an id or a reference, and of a contract found
        # by its number or an id; not of a contract whose title matched some text.
        found = list(self.contracts) if self.with_parties else []
        if self.payments:
            found.append(select(Payment.contract_id).where(Payment.id.in_(_union(self.payments))))
        if found:
            contracts = _union(found)
            ids.append(select(Contract.student_id).where(Contract.id.in_(contracts)))
            ids.append(select(Contract.coach_id).where(Contract.id.in_(contracts)))
        return User.id.in_(_newest(_union(ids), newest)) if ids else false()


def _union(selects: list[Select[Any]]) -> Any:
    return selects[0] if len(selects) == 1 else union_all(*selects)


def _newest(ids: Any, limit: int | None) -> Any:
    """The `limit` highest of a set of ids (all of them without `limit`). A group shown
    newest first by id then joins a handful of rows by their key: given the whole set,
    PostgreSQL guesses it large and walks the table's key backwards until it meets the
    matches, hundreds of thousands of rows when they are old."""
    if limit is None:
        return ids
    found = ids.subquery()
    key = next(iter(found.c))
    return select(key).distinct().order_by(key.desc()).limit(limit)


# --- Stripe's ids -------------------------------------------------------------------------


def _payments_where(condition: ColumnElement[bool]) -> Callable[[Terms], None]:
    def add(terms: Terms) -> None:
        terms.payments.append(select(Payment.id).where(condition))
    return add


def _customer(terms: Terms) -> None:
    terms.payments.append(select(Payment.id).where(Payment.customer_id == terms.q))
    terms.people.append(select(StripeCustomer.user_id).where(StripeCustomer.customer_id == terms.q))


def _refund(terms: Terms) -> None:
    terms.payments.append(select(Refund.payment_id).where(Refund.stripe_refund_id == terms.q))


def _dispute(terms: Terms) -> None:
    terms.payments.append(select(Dispute.payment_id).where(Dispute.stripe_dispute_id == terms.q))


def _transfer(terms: Terms) -> None:
    share = select(SessionShare.contract_id).where(SessionShare.stripe_transfer_id == terms.q)
    terms.contracts.append(share)


def _reversal(terms: Terms) -> None:
    terms.contracts.append(
        select(SessionShare.contract_id)
        .join(TransferReversal, TransferReversal.share_id == SessionShare.id)
        .where(TransferReversal.stripe_reversal_id == terms.q)
    )


def _account(terms: Terms) -> None:
    terms.people.append(
        select(ConnectedAccount.user_id).where(ConnectedAccount.stripe_account_id == terms.q)
    )


def _event(terms: Terms) -> None:
    """An event finds what it was about: its object's id, read as a query of its own."""
    event = db.session.execute(
        select(WebhookEvent.object_id, WebhookEvent.payment_intent_id)
        .where(WebhookEvent.stripe_event_id == terms.q)
    ).first()
    if event is None:
        return
    for object_id in (event.object_id, event.payment_intent_id):
        if object_id and not object_id.startswith("evt_"):
            found = read(object_id)
            terms.people += found.people
            terms.contracts += found.contracts
            terms.payments += found.payments


# The prefix of each kind of Stripe id we keep, what it is in words, and where it is found.
STRIPE_IDS: tuple[tuple[str, str, Callable[[Terms], None]], ...] = (
    ("cs_", "a Checkout session id", lambda t: _payments_where(
        Payment.checkout_session_id == t.q)(t)),
    ("pi_", "a payment intent id", lambda t: _payments_where(Payment.payment_intent_id == t.q)(t)),
    ("ch_", "a charge id", lambda t: _payments_where(Payment.charge_id == t.q)(t)),
    ("py_", "a bank debit's charge id", lambda t: _payments_where(Payment.charge_id == t.q)(t)),
    ("txn_", "a balance transaction id",
     lambda t: _payments_where(Payment.balance_transaction_id == t.q)(t)),
    ("cus_", "a customer id", _customer),
    ("re_", "a refund id", _refund),
    ("pyr_", "a refund id", _refund),
    ("dp_", "a dispute id", _dispute),
    ("du_", "a dispute id", _dispute),
    ("trr_", "a transfer reversal id", _reversal),
    ("tr_", "a transfer id", _transfer),
    ("acct_", "a connected account id", _account),
    ("evt_", "an event id", _event),
)
# Stripe ids of kinds we do not keep: said so, rather than searched as text.
UNKEPT_IDS = {
    "in_": "Coachpact keeps no Stripe invoices: its own invoice numbers look like "
           "CP-2026-000003.",
    "pm_": "Coachpact keeps no payment methods.",
    "seti_": "Coachpact keeps no setup intents.",
    "po_": "Coachpact keeps no payouts to bank accounts.",
}
_ID_SHAPE = re.compile(r"^[a-z]{2,5}_[A-Za-z0-9_]+$")


def read(q: str) -> Terms:
    """The reading of `q` (already stripped of surrounding spaces)."""
    terms = Terms(q=q)
    if not q:
        terms.problem = "Type a name, an email, a contract's title, a reference or an id."
        return terms
    if len(q) > MAX_LENGTH:
        terms.problem = (f"That is {len(q)} characters long: a search takes at most "
                         f"{MAX_LENGTH}. Paste one name, email, title, reference or id.")
        return terms
    if _ID_SHAPE.match(q):
        for prefix, kind, find in STRIPE_IDS:
            if q.startswith(prefix):
                terms.reading, terms.with_parties = f"Stripe’s {kind}", True
                find(terms)
                return terms
        for prefix, why in UNKEPT_IDS.items():
            if q.startswith(prefix):
                terms.problem = why
                return terms
    if match := INVOICE_NUMBER.match(q):
        number = f"CP-{match[1]}-{int(match[2]):06d}"
        terms.reading, terms.with_parties = f"the invoice number {number}", True
        terms.payments.append(select(Invoice.payment_id).where(Invoice.number == number))
        return terms
    if match := CONTRACT_NUMBER.match(q):
        terms.reading, terms.with_parties = f"contract #{int(match[1])}", True
        terms.contracts.append(select(Contract.id).where(Contract.id == int(match[1])))
        return terms
    if match := MANUAL_REFERENCE.match(q):
        terms.reading, terms.with_parties = f"manual payment #{int(match[1])}", True
        terms.payments.append(select(Payment.id).where(Payment.id == int(match[1])))
        return terms
    words = fold(q).split()
    if sum(len(word) for word in words) < MIN_TEXT:
        terms.problem = (f"“{q}” is too short to search: type at least {MIN_TEXT} letters of a "
                         "name, an email or a title, or a whole id.")
        return terms
    terms.reading = "text"
    terms.people.append(select(User.id).where(*_contains(User.search_text, words)))
    terms.contracts.append(select(Contract.id).where(*_contains(Contract.search_text, words)))
    if REFERENCE_SHAPE.match(q):
        terms.payments += [select(Payment.id).where(_ends(column, q)) for column in
                           (Payment.checkout_session_id, Payment.payment_intent_id)]
    if len(words) == 1:
        # Manual references are few: a partial index holds them alone.
        terms.payments.append(select(Payment.id).where(
            Payment.manual_reference.is_not(None),
            func.lower(Payment.manual_reference) == q.lower(),
        ))
    return terms


def _ends(column: Any, q: str) -> ColumnElement[bool]:
    """`column` ends with `q`, any case: a whole reference by the index of ids' endings,
    a longer or shorter part by the ids' trigrams."""
    if len(q) == REFERENCE_LENGTH:
        return func.lower(Ending(column, REFERENCE_LENGTH)) == q.lower()
    return column.iendswith(q, autoescape=True)


def _contains(column: Any, words: list[str]) -> list[ColumnElement[bool]]:
    return [column.contains(word, autoescape=True) for word in words]
