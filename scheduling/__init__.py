"""Coaching sessions: booking, working hours, slots, meeting places, the calendar feed.

Above contracts: it reads a contract's row (what is paid, what is left) and never
changes the contract's own state, which stays with `contracts.lifecycle`.
"""

from __future__ import annotations

from typing import Any

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the `web_address` filter and the contract page's sessions (create_app calls it)."""
    from contracts.views import DETAIL_SECTIONS
    from scheduling.ics import web_address

    app.add_template_filter(web_address, "web_address")
    if contract_sessions not in DETAIL_SECTIONS:
        DETAIL_SECTIONS.append(contract_sessions)


def contract_sessions(contract: Any) -> dict[str, Any]:
    """What the contract page shows of its sessions: the agenda, what is left, why closed."""
    from scheduling import holds, sessions

    booked = sessions.sessions_of_contract(contract)
    # The time picked at payment could not be booked: asked again until a session is.
    lapsed = holds.lapsed_hold(contract) if not booked else None
    return {
        "sessions": sessions.agenda(booked),
        "remaining": sessions.remaining_count(contract, booked),
        "closed_reason": sessions.scheduling_closed_reason(contract),
        "lapsed_hold": lapsed,
    }
