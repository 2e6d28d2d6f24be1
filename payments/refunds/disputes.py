"""Disputes: Stripe's `charge.dispute.*` events mirrored on a row of ours and the contract.

A dispute opening keeps the contract's state before it, closes scheduling and
blocks refunds (unless Stripe says the charge is still refundable); won, the
contract returns to that state; lost, the bank gave the money back, so the
contract is refunded (`contracts.lifecycle`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

import clock
from audit.services import record as audit
from contracts import lifecycle
from contracts.models import ContractStatus
from contracts.services import lock_contract
from database.locking import lock_by_id
from extensions import db
from payments.models import OPEN_DISPUTE_STATUSES, Dispute, Payment
from payments.plan_terms import close_plan
from payments.records import payment_by
from payments.standing import DISPUTE_LOST, PAID_STATUSES, standing_of
from scheduling.sessions import consumed_count


def _due_by(dispute: dict[str, Any]) -> datetime | None:
    due = (dispute.get("evidence_details") or {}).get("due_by")
    return datetime.fromtimestamp(int(due), UTC) if due else None


def _locked_row(dispute: dict[str, Any]) -> tuple[Dispute | None, Payment]:
    """Our row of this dispute (None if new) and its payment, the contract locked."""
    payment = payment_by(payment_intent_id=dispute.get("payment_intent"))
    if payment is None:
        raise LookupError("a dispute on a payment intent we do not know yet")
    lock_contract(payment.contract_id)
    known = db.session.scalar(select(Dispute.id).where(Dispute.stripe_dispute_id == dispute["id"]))
    row = lock_by_id(db.session, Dispute, known) if known else None
    return row, payment


def _update(row: Dispute, dispute: dict[str, Any]) -> dict[str, Any]:
    before = {"status": row.status, "amount": row.amount}
    row.status = str(dispute.get("status") or row.status)
    row.amount = int(dispute.get("amount") or row.amount)
    row.reason = str(dispute.get("reason") or row.reason)
    row.is_charge_refundable = bool(dispute.get("is_charge_refundable"))
    row.evidence_due_by = _due_by(dispute) or row.evidence_due_by
    return before


def mirror_dispute(dispute: dict[str, Any]) -> str:
    """Any `charge.dispute.*` event: our row made or brought up to date; the outcome.

    Events may come in any order: the row follows the latest, and the contract
    moves when the dispute opens and when it closes. The caller commits.
    """
    row, payment = _locked_row(dispute)
    contract = payment.contract
    if row is None:
        # A second dispute while one is open: the contract returns, once both are
        # decided, to where it was before the first.
        earlier = (standing_of(contract).open_dispute
                   if contract.status is ContractStatus.DISPUTED else None)
        row = Dispute(
            stripe_dispute_id=dispute["id"],
            payment_id=payment.id,
            contract_id=contract.id,
            amount=int(dispute.get("amount") or 0),
            currency=str(dispute.get("currency") or payment.currency),
            reason=str(dispute.get("reason") or "general"),
            status=str(dispute.get("status") or "needs_response"),
            is_charge_refundable=bool(dispute.get("is_charge_refundable")),
            evidence_due_by=_due_by(dispute),
            contract_status_before=(earlier.contract_status_before if earlier
                                    else contract.status.value),
            payment_status_before=(earlier.payment_status_before if earlier
                                   else contract.payment_status.value),
        )
        db.session.add(row)
        db.session.flush()
        audit(
            "dispute.opened",
            row,
            actor_label="stripe",
            after={"amount": row.amount, "reason": row.reason, "status": row.status},
        )
        before = None
    elif row.closed_at is not None:
        return "stale"  # decided already: an earlier event arriving late changes nothing
    else:
        before = _update(row, dispute)
        db.session.flush()
        if before["status"] != row.status:
            audit(
                "dispute.updated",
                row,
                actor_label="stripe",
                before=before,
                after={"status": row.status, "amount": row.amount},
            )
    details = {"dispute_id": row.stripe_dispute_id, "reason": row.reason, "payment_id": payment.id}
    # Only a payment that counts for the contract puts the contract under dispute; one
    # held for review (or void) is the admin's to decide, and the dispute is listed.
    counts = (
        contract.paid_at is not None
        and payment.void_reason is None
        and payment.status in PAID_STATUSES
    )
    if before is None and counts:
        # Opened (even when the first event we see already closes it: it opened first).
        lifecycle.open_dispute(contract, actor_label="stripe", details=details)
    if row.status in OPEN_DISPUTE_STATUSES:
        return "disputed" if before is None else "updated"
    row.closed_at = clock.now()
    if counts:
        db.session.flush()
        # Refunds made while it was open (Stripe allowed them) and, when lost, the
        # disputed amount count as given back (`payments.standing`).
        lifecycle.close_dispute(
            contract,
            # An inquiry closed without a chargeback ends like a dispute won.
            won=row.status != DISPUTE_LOST,
            status_before=ContractStatus(row.contract_status_before),
            received=standing_of(contract).received,
            consumed_sessions=consumed_count(contract.id),
            actor_label="stripe",
            details={**details, "status": row.status},
            still_disputed=standing_of(contract).open_dispute is not None,
        )
        if contract.status is ContractStatus.REFUNDED:
            close_plan(contract, reason="the bank returned the payment")
    return f"dispute_{row.status}"


def open_disputes() -> list[Dispute]:
    """Open disputes, the nearest evidence deadline first (for the admin console)."""
    return list(
        db.session.scalars(
            select(Dispute)
            .where(Dispute.closed_at.is_(None))
            .order_by(Dispute.evidence_due_by.is_(None), Dispute.evidence_due_by, Dispute.id)
        )
    )
