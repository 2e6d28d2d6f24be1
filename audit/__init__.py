"""The audit trail: who changed what, from what to what, and when.

Knows `accounts.models.User` for typing only: accounts imports audit, never the
other way round at run time.
"""
