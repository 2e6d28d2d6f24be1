"""A coach's standing offers and public page: terms anyone may buy, with the plans their
rules allow. A purchase becomes a contract through the same path as an accepted
proposal (`contracts.services.accept_offered_terms`).

Above payments (it shows the plans the money core would allow) and below the admin
console, which reads offers.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Nothing to register beyond the blueprint yet (create_app calls it for symmetry)."""
