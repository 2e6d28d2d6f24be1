"""Coachpact's local Stripe stand-in: Stripe's API subset, hosted Checkout and signed webhooks.

Run it with `python -m sandbox --port 12111`; point the app's StripeClient at it
with `base_addresses={"api": "http://127.0.0.1:12111"}`.
"""

from sandbox.app import create_app

__all__ = ["create_app"]
