"""The audit trail: who changed what, from what to what, and when."""
