"""A coach's standing offers and public page: terms anyone may buy, with the plans their
rules allow. A purchase becomes a contract through the same path as an accepted
proposal (`contracts.services.accept_offered_terms`). Memberships are recurring offers on
Stripe Billing (`offers.memberships`, `offers.membership_events`).

Above payments (it shows the plans the money core would allow) and below the admin
console, which reads offers.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the Billing events memberships apply, and the renewals Stripe could not
    collect (the blueprint comes with the rest)."""
    from offers.membership_changes import register_change_handlers
    from offers.membership_events import register_membership_handlers

    register_membership_handlers()
    register_change_handlers()
