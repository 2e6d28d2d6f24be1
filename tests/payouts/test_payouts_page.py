"""The coach's payouts page."""

from __future__ import annotations

from datetime import timedelta

from tests.conftest import login
from tests.payouts.conftest import run_payouts


def test_the_page_is_for_coaches_only(client, make_user):
    login(client, make_user("student"))
    assert client.get("/payouts/").status_code == 404


def test_set_up_payouts_sends_the_coach_to_stripe_onboarding(client, db, sandbox, make_user):
    from payouts.models import ConnectedAccount

    coach = make_user("coach")
    login(client, coach)
    page = client.get("/payouts/").get_data(as_text=True)
    assert "Set up payouts" in page
    response = client.submit("/payouts/setup")
    assert response.status_code == 303
    assert response.headers["Location"].startswith(sandbox.url)
    account = db.session.query(ConnectedAccount).one()
    assert account.user_id == coach.id and not account.ready


def test_the_page_shows_the_account_totals_and_transfers(
    client, db, clock, paid, deliver, ready_account
):
    client.submit("/auth/logout")  # the fixture's client paid as the student
    login(client, paid[2])
    deliver(1)
    clock.advance(timedelta(days=3))
    run_payouts(db)
    page = client.get("/payouts/").get_data(as_text=True)
    assert ready_account in page
    assert "Open your Stripe dashboard" in page
    assert "$47.50" in page  # the session's share, transferred
    assert "$142.50" in page  # still to earn: three sessions
    assert "tr_" in page
    response = client.submit("/payouts/dashboard")
    assert response.status_code == 303
