"""Coach payouts through Stripe Connect: connected accounts, per-session shares,
transfers and reversals, and the ledger check (payouts → payments → contracts)."""
