"""Money back: a student's requests (`requests`), an admin's decisions and the refunds
they start (`decisions`), a coach's offers (`offers`), what Stripe says of refunds
(`sync`) and disputes (`disputes`). The names below are what the pages, jobs and event
handlers use."""

from payments.refunds.decisions import (
    Outcome,
    approve_request,
    cancel_active_contract,
    decide_many,
    describe,
    refund_contract,
    refund_void_payment,
    reject_request,
)
from payments.refunds.offers import OfferOutlook, offer_refund, outlook
from payments.refunds.requests import (
    RefundRefused,
    open_dispute_of,
    open_request_of,
    quote_now,
    refundable,
    refunds_of_contract,
    refusal,
    request_refund,
    requests_of_contract,
    withdraw_request,
)
from payments.refunds.sync import (
    REFUND_ID_KEY,
    live_refunded,
    mirror,
    mirror_charge,
    send_now,
    send_refund,
    send_refund_job,
    sweep_unsent_refunds,
    unsent_refund_ids,
)

__all__ = [
    "REFUND_ID_KEY",
    "OfferOutlook",
    "Outcome",
    "RefundRefused",
    "approve_request",
    "cancel_active_contract",
    "decide_many",
    "describe",
    "live_refunded",
    "mirror",
    "mirror_charge",
    "offer_refund",
    "open_dispute_of",
    "open_request_of",
    "outlook",
    "quote_now",
    "refund_contract",
    "refund_void_payment",
    "refundable",
    "refunds_of_contract",
    "refusal",
    "reject_request",
    "request_refund",
    "requests_of_contract",
    "send_now",
    "send_refund",
    "send_refund_job",
    "sweep_unsent_refunds",
    "unsent_refund_ids",
    "withdraw_request",
]
