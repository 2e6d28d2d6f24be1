"""Payouts in Chromium: a coach onboards on the sandbox's hosted page, a delivered session
passes its hold, and the transfer shows on the coach's Payouts page."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import PASSWORD
from tests.support import log_in, shot

pytestmark = pytest.mark.browser


def test_a_coach_onboards_and_sees_the_transfer_after_the_hold(
    page, live_url, sandbox, db, paid, deliver, clock
):
    from payouts import shares, transfers
    from payouts.models import ConnectedAccount

    contract_id, _, coach = paid
    deliver(1)

    log_in(page, live_url, coach.email, PASSWORD)
    page.locator("#nav-payouts").click()
    page.wait_for_url(f"{live_url}/payouts/")  # is_visible does not wait for the page
    assert page.locator("#no-transfers").is_visible()
    page.locator("#setup-payouts").click()
    page.wait_for_url(f"{sandbox.url}/connect/onboarding/*")
    shot(page, "payouts-sandbox-onboarding")
    page.locator("#complete").click()
    page.wait_for_url(f"{live_url}/payouts/")
    db.session.expire_all()
    account = db.session.query(ConnectedAccount).filter_by(user_id=coach.id).one()
    assert account.payouts_enabled and account.charges_enabled

    # Three days after the session was marked, its share is transferred.
    clock.advance(timedelta(days=3, minutes=5))
    shares.make_session_shares()
    transfers.transfer_due_shares()
    page.reload()
    transferred = page.locator("#payout-transfers").inner_text()
    assert "tr_" in transferred and "$47.50" in transferred  # $190.00 earning ÷ 4 sessions
    shot(page, "payouts-coach-page")
