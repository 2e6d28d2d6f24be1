"""Paying through Checkout: starting a session (`start`), fulfilling what Stripe reports
(`fulfil`, the one idempotent function the success page and the inbox share) and the
review queue for what did not match (`review`). The pay pages use what `start` offers."""

from payments.checkout.start import (
    ON_ITS_WAY,
    NotPayable,
    SlotTaken,
    confirm_return,
    contract_for_student,
    customer_of,
    manual_only,
    release_on_cancel,
    start_checkout,
    start_instalment_checkout,
)

__all__ = [
    "ON_ITS_WAY",
    "NotPayable",
    "SlotTaken",
    "confirm_return",
    "contract_for_student",
    "customer_of",
    "manual_only",
    "release_on_cancel",
    "start_checkout",
    "start_instalment_checkout",
]
