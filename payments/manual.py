"""Manual (offline) payments: cash, a cheque or a bank transfer, recorded by an admin.

The payment record is as final as a Stripe one: the contract is activated
through the same `contracts.lifecycle.mark_paid`, and it is never deleted (a
mistake is undone by a recorded refund).
"""

from __future__ import annotations

from datetime import date

import clock
from accounts.models import User
from audit.services import record as audit
from contracts.models import Contract, ContractStatus
from contracts.services import lock_contract
from extensions import db
from payments import plan_terms as plans
from payments.models import ManualMethod, Payment, PaymentRecordStatus
from payments.settle import settle


class ManualPaymentRefused(Exception):
    """The contract cannot take a manual payment now; the message says why."""


def manual_refusal(
    contract: Contract, *, received_on: date, instalments: int | None = None
) -> str | None:
    """Why `contract` cannot take this manual payment now, or None when it can."""
    if contract.paid_at is not None:
        return "This contract is paid already; nothing was recorded."
    if contract.status is not ContractStatus.PENDING:
        return f"This contract is {contract.status.value}; only a pending contract takes a payment."
    if received_on > clock.now().date():
        return "The money cannot have been received in the future."
    if instalments is not None:
        return plans.refusal(contract, instalments)
    return None


def amount_due(contract: Contract, instalments: int | None = None) -> int:
    """What a manual payment records: the contract's total, or the deposit of the plan of
    `instalments` (checked by `manual_refusal`)."""
    return contract.total_amount if instalments is None else plans.deposit_of(contract, instalments)


def record_manual_payment(
    contract_id: int,
    admin: User,
    *,
    method: ManualMethod,
    reference: str,
    received_on: date,
    note: str,
    instalments: int | None = None,
) -> Payment:
    """Record an offline payment of a pending contract's total and activate the contract.

    With `instalments`, the payment is the deposit of that plan (`payments.plans`): the
    plan starts and its instalments are recorded the same way when they arrive.
    Under the contract's lock, so two submissions at once record one payment.
    """
    contract = lock_contract(contract_id)
    if contract is None:
        raise LookupError(contract_id)
    why_not = manual_refusal(contract, received_on=received_on, instalments=instalments)
    if why_not:
        raise ManualPaymentRefused(why_not)
    payment = Payment(
        contract_id=contract.id,
        amount=amount_due(contract, instalments),
        currency=contract.currency,
        status=PaymentRecordStatus.PENDING,
        manual_method=method,
        manual_reference=reference.strip(),
        received_on=received_on,
        note=note.strip() or None,
        recorded_by_id=admin.id,
    )
    if instalments is not None:
        payment.stripe_metadata = {"plan_instalments": str(instalments)}
    db.session.add(payment)
    db.session.flush()
    audit(
        "payment.manual_recorded",
        payment,
        actor=admin,
        after={
            "method": method.value,
            "reference": payment.manual_reference,
            "received_on": received_on.isoformat(),
            "amount": payment.amount,
            "note": payment.note,
        },
    )
    settle(payment, contract, actor=admin, details={"method": "manual"})
    return payment
