"""Payment records, the Stripe seam, checkout, fulfilment and the webhook."""
