"""A payment's timeline in words: audit actions and Stripe events as sentences.

The audit log keeps codes (`payment.flagged`) and the values of a change as JSON; an
admin reads what happened. Unknown actions still read as words, never as a dict.
"""

from __future__ import annotations

from typing import Any

from contracts.money import MoneyError, format_money, method_words

ACTIONS = {
    "payment.checkout_started": "The student opened Stripe Checkout",
    "payment.recorded_from_stripe": "Stripe reported the payment",
    "payment.flagged": "The payment was held for review",
    "payment.failed": "The payment failed",
    "payment.duplicate": "A second payment arrived for a contract already paid",
    "payment.after_cancellation": "A payment arrived after the contract was cancelled",
    "payment.shortfall_waived": "The missing amount was written off",
    "payment.manual_recorded": "An offline payment was recorded",
    "payment.review_accepted": "The held payment was accepted",
    "payment.review_refunded": "The held payment was refunded",
    "payment.review_rejected": "The held payment was rejected",
    "contract.paid": "The contract was paid in full",
    "contract.payment_received": "A payment towards the contract arrived",
    "contract.payment_processing": "The payment is being processed by the bank",
    "contract.payment_failed": "The contract's payment failed",
    "contract.past_due": "The contract fell behind on its payments",
    "contract.refund_recorded": "A refund was recorded on the contract",
    "contract.disputed": "The student's bank opened a dispute",
    "contract.dispute_won": "The dispute was won",
    "contract.dispute_lost": "The dispute was lost",
    "contract.cancelled": "The contract was cancelled",
    "contract.completed": "The contract was completed",
    "contract.sessions_cancelled": "The contract's sessions were cancelled",
    "contract.meeting_place_set": "The meeting place was set",
    "instalment.paid": "An instalment was paid",
    "instalment.failed": "An instalment's charge failed",
    "instalment.charge_started": "An instalment's charge was started",
    "instalment.moved": "An instalment was moved to another date",
    "refund.created": "A refund was made",
    "refund.pending": "The refund is on its way",
    "refund.succeeded": "The refund went through",
    "refund.failed": "The refund failed",
    "refund.canceled": "The refund was canceled",
    "refund.amount_mismatch": "Stripe's refund differs from the amount asked for",
    "refund_request.created": "The student asked for a refund",
    "refund_request.approved": "The refund request was approved",
    "refund_request.rejected": "The refund request was declined",
    "refund_request.reopened": "The refund request was reopened",
    "refund_request.withdrawn": "The student withdrew the refund request",
    "refund_request.offered": "The coach offered a refund above the refund terms",
    "refund.offered": "The coach gave money back",
    "dispute.opened": "A dispute was opened",
    "dispute.updated": "The dispute changed",
}

EVENTS = {
    "checkout.session.completed": "the Checkout session was completed",
    "checkout.session.expired": "the Checkout session expired unpaid",
    "checkout.session.async_payment_succeeded": "the bank debit went through",
    "checkout.session.async_payment_failed": "the bank debit did not go through",
    "payment_intent.succeeded": "the payment succeeded",
    "payment_intent.payment_failed": "the payment failed",
    "charge.refunded": "the charge was refunded",
    "charge.refund.updated": "a refund of the charge changed",
    "refund.created": "a refund was made",
    "refund.updated": "a refund changed",
    "refund.failed": "a refund failed",
    "charge.dispute.created": "the student's bank opened a dispute",
    "charge.dispute.updated": "the dispute changed",
    "charge.dispute.closed": "the dispute was closed",
}

# Fields whose values are amounts in minor units of the payment's currency.
MONEY_FIELDS = {
    "amount", "amount_paid", "amount_waived", "amount_refunded", "amount_returned",
    "refunded", "waived", "shortfall", "total", "total_amount", "expected",
}
FIELD_WORDS = {
    "status": "status",
    "payment_status": "payment status",
    "reason": "reason",
    "checkout_session_id": "Checkout session",
    "payment_intent_id": "payment intent",
}


def _words(code: str) -> str:
    return code.replace("_", " ").replace(".", " ")


def value_words(name: str, value: Any, currency: str) -> str:
    """One recorded value as people read it: money formatted, codes as words."""
    if value is None:
        return "none"
    if name in MONEY_FIELDS and isinstance(value, int) and not isinstance(value, bool):
        try:
            return format_money(value, currency)
        except MoneyError:
            return str(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return "; ".join(f"{_words(k)} {value_words(k, v, currency)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(value_words(name, v, currency) for v in value)
    if isinstance(value, str) and name in ("status", "payment_status"):
        return _words(value)
    if isinstance(value, str) and name in ("method", "payment_method_type"):
        return method_words(value)
    return str(value)


def changes_words(before: dict[str, Any] | None, after: dict[str, Any] | None,
                  currency: str) -> str:
    """What an audit entry changed: "status: pending → active; amount: $72.00"."""
    before, after = before or {}, after or {}
    parts = []
    for name in list(after) + [k for k in before if k not in after]:
        label = FIELD_WORDS.get(name, _words(name))
        new = value_words(name, after.get(name), currency)
        if name in before and before[name] != after.get(name) and name in after:
            old = value_words(name, before[name], currency)
            parts.append(f"{label}: {old} → {new}")
        elif name in after:
            if name == "reason":
                parts.append(new)
            else:
                parts.append(f"{label}: {new}")
        else:
            parts.append(f"{label} was {value_words(name, before[name], currency)}")
    return "; ".join(parts)


def action_words(action: str) -> str:
    """An audit action as a sentence; an unknown one as its words ("Plan paused")."""
    if action in ACTIONS:
        return ACTIONS[action] + "."
    return _words(action).capitalize() + "."


def event_words(event_type: str) -> str:
    """A Stripe event's meaning: "Stripe: the Checkout session was completed"."""
    meaning = EVENTS.get(event_type) or f"{_words(event_type)}"
    return f"Stripe: {meaning}"


def actor_words(label: str) -> str:
    """Who did it: "Stripe", "Coachpact" (the system) or the person's label."""
    if label.startswith("stripe"):
        return "Stripe"
    if label == "system":
        return "Coachpact"
    return label
