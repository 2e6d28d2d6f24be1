"""Proposals, contracts and their money arithmetic. Never imports stripe."""
