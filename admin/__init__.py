"""The admin console: payments, events, reviews, the audit trail and analytics."""
