"""Settle: the one function that makes a payment count for its contract.

Checkout's fulfilment, an admin's manual payment, the review queue's accept and
an instalment's charge (card, Checkout or offline) all end here, under the
contract's lock, in the caller's transaction:

1. the payment succeeds (a failure message of an earlier attempt is cleared: it
   belongs to the failed attempt only);
2. money that cannot count goes back in full, once: a second payment of a paid
   contract or instalment, or a payment for a contract or plan that was closed;
3. a plan starts (the deposit, from the payment's own metadata) or advances
   (its instalment is paid);
4. the contract records where its money now stands (`payments.standing`) through
   `contracts.lifecycle.mark_paid`, with what arrived: a short payment an admin
   accepted counts as what arrived, plus a shortfall written off only when the
   admin says so (`waive`);
5. the invoice is numbered, with this payment's cumulative share of the fee;
6. audit entries and notices follow from the lifecycle;
7. the first session's time the payment held is booked (`scheduling.holds`), or the
   student is told to choose another time when it was taken after the hold ended.
"""

from __future__ import annotations

from typing import Any

import clock
from accounts.models import User
from audit.services import record as audit
from contracts import lifecycle
from contracts.models import Contract, ContractStatus
from contracts.money import format_money
from contracts.services import load_parties
from extensions import db
from payments import plan_terms
from payments.invoices import issue_invoice
from payments.models import (
    Instalment,
    InstalmentStatus,
    Payment,
    PaymentRecordStatus,
    VoidReason,
)
from payments.records import move
from payments.refunds import refund_void_payment
from payments.standing import standing_of
from scheduling import holds

# Contracts that take no more money: what arrives for them goes back in full.
_CLOSED = (ContractStatus.CANCELLED, ContractStatus.REFUNDED)


def _digits(metadata: dict[str, Any] | None, key: str) -> int | None:
    raw = str((metadata or {}).get(key, ""))
    return int(raw) if raw.isdigit() else None


def instalment_of(contract: Contract, metadata: dict[str, Any] | None,
                  instalment_id: int | None = None) -> Instalment | None:
    """The plan instalment a payment pays (its own link, else its metadata's), if any."""
    instalment_id = instalment_id or _digits(metadata, "instalment_id")
    if instalment_id is None:
        return None
    instalment = db.session.get(Instalment, instalment_id)
    if instalment is None or instalment.plan.contract_id != contract.id:
        return None
    return instalment


def expected_amount(contract: Contract, metadata: dict[str, Any] | None) -> int | None:
    """What a payment with this metadata should bring, from our rows alone (None: nothing
    valid): one instalment, a plan's deposit, or the contract's total."""
    if _digits(metadata, "instalment_id") is not None:
        instalment = instalment_of(contract, metadata)
        return instalment.amount if instalment is not None else None
    count = _digits(metadata, "plan_instalments")
    if count is not None:
        return None if plan_terms.refusal(contract, count) else plan_terms.deposit_of(contract,
                                                                                     count)
    return contract.total_amount


def settle(
    payment: Payment,
    contract: Contract,
    *,
    actor: User | None = None,
    actor_label: str | None = None,
    waive: int = 0,
    details: dict[str, Any] | None = None,
) -> str:
    """Make `payment` count for `contract` (locked by the caller); what happened, in a word.

    Flushes; the caller commits. Idempotent on the payment's own state: a payment
    that counts already is not counted again.
    """
    if payment.status is not PaymentRecordStatus.SUCCEEDED:
        move(payment, PaymentRecordStatus.SUCCEEDED)
    payment.paid_at = payment.paid_at or clock.now()
    payment.failure_reason = None
    instalment = instalment_of(contract, payment.stripe_metadata, payment.instalment_id)
    if contract.status in _CLOSED or (
        instalment is not None and instalment.status is InstalmentStatus.CANCELLED
    ):
        return _void(payment, contract, VoidReason.CLOSED)
    outcome = "fulfilled"
    if instalment is not None and instalment.number > 0:
        if instalment.status is InstalmentStatus.PAID:
            return _void(payment, contract, VoidReason.DUPLICATE, instalment)
        plan_terms.instalment_paid(instalment, payment, actor=actor, actor_label=actor_label)
        outcome = "instalment_paid"
    elif contract.paid_at is not None:
        return _void(payment, contract, VoidReason.DUPLICATE)
    elif (count := _digits(payment.stripe_metadata, "plan_instalments")) is not None:
        plan_terms.start_plan(contract, payment, count, actor=actor)
    payment.amount_waived = max(waive, 0)
    db.session.flush()
    standing = standing_of(contract)
    load_parties(contract)  # the notices and the invoice name both
    lifecycle.mark_paid(
        contract,
        paid_at=payment.paid_at,
        amount=payment.amount,
        received=standing.received,
        actor=actor,
        actor_label=actor_label,
        details={
            "payment_id": payment.id,
            **({"instalment": instalment.number} if instalment is not None else {}),
            **(details or {}),
        },
    )
    if waive > 0:
        audit(
            "payment.shortfall_waived",
            payment,
            actor=actor,
            actor_label=actor_label,
            after={"waived": waive, "amount": payment.amount},
        )
    holds.book_paid_hold(contract, payment.id)
    # Last: its number's lock serialises concurrent payments until they commit.
    issue_invoice(payment, paid_before=standing.arrived - payment.amount)
    return outcome


def _void(payment: Payment, contract: Contract, reason: VoidReason,
          instalment: Instalment | None = None) -> str:
    """Money that cannot count: recorded, and refunded in full after commit (a job asks
    Stripe outside any lock); both parties are told."""
    payment.void_reason = reason
    refund_void_payment(payment)
    holds.release_for_payment(payment.id, "void")  # the money goes back: so does its time
    amount = format_money(payment.amount, payment.currency)
    if reason is VoidReason.DUPLICATE:
        audit("payment.duplicate", payment, actor_label="system", after={"amount": payment.amount})
        lifecycle.tell_parties(
            contract,
            f"A second payment of {amount} for “{contract.title}” arrived after "
            f"{'that instalment' if instalment else 'the contract'} was already "
            "paid. It is being refunded in full; nothing else changes.",
            subject=f"Coachpact: a second payment for “{contract.title}” is being refunded",
        )
        return "duplicate"
    audit(
        "payment.after_cancellation",
        payment,
        actor_label="system",
        after={"amount": payment.amount, "contract_status": contract.status.value},
    )
    lifecycle.tell_parties(
        contract,
        f"A payment of {amount} for “{contract.title}” arrived after the contract was "
        f"{contract.status.value}; it is being refunded in full.",
    )
    return "refunded_closed"
