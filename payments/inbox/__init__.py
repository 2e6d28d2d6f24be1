"""The inbox: Stripe's events stored as received, then applied exactly once.

`webhook` (the endpoint: verify, store, answer), `store` (the one insert),
`table` (event type → handler, filled through `register`), `processing` (apply,
retry, replay, sweep) and `reconcile` (list Stripe's events, add what is missing).
"""
