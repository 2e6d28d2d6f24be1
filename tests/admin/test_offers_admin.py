"""The console's view of offers: a coach's offers, a contract's offer, revenue by source."""

from __future__ import annotations

import pytest


@pytest.fixture
def sold(app, db, make_user, make_proposal, admin_user):
    """A coach with a page and two offers; one offer bought and paid, one proposal paid.

    Returns (coach, offer id, offer contract id, proposal contract id).
    """
    import clock
    from accounts.services import update_public_page
    from contracts.services import accept_proposal
    from offers.models import OfferStatus
    from offers.services import buy_offer, create_offer, set_offer_status
    from payments.manual import record_manual_payment
    from payments.models import ManualMethod

    coach = db.session.merge(make_user("coach", name="Maya Lopez"))
    student = db.session.merge(make_user("student"))
    update_public_page(coach, slug="maya", bio="")
    terms = {"description": "Mock interviews.", "session_count": 4, "minutes_per_session": 60,
             "currency": "usd", "plan_deposit_percent": None, "plan_max_instalments": None,
             "plan_minimum_total": None}
    offer = create_offer(coach, title="Interview sprint", price_per_session=10000, **terms)
    paused = create_offer(coach, title="Career review", price_per_session=8000, **terms)
    set_offer_status(paused, coach, OfferStatus.PAUSED)
    db.session.commit()
    with app.test_request_context():
        bought, _ = buy_offer(offer.id, student)
        db.session.commit()
        proposal_id = make_proposal(coach, student, price_per_session=5000)
        proposed = accept_proposal(proposal_id, db.session.merge(student))
        db.session.commit()
        admin = db.session.merge(admin_user)
        for number, contract_id in enumerate((bought.id, proposed.id)):
            record_manual_payment(contract_id, admin, method=ManualMethod.BANK_TRANSFER,
                                  reference=f"REF-{number}", received_on=clock.now().date(),
                                  note="")
            db.session.commit()
    return coach.id, offer.id, bought.id, proposed.id


def test_the_dashboard_splits_revenue_by_offer_and_by_proposals(admin_client, db, sold):
    import clock
    from admin.analytics import dashboard

    _coach_id, offer_id, _bought, _proposed = sold
    today = clock.now().date()
    sources = {s.offer_id: s for s in dashboard(today, today).sources}
    assert set(sources) == {None, offer_id}
    assert (sources[offer_id].gross, sources[offer_id].succeeded) == (40000, 1)
    assert sources[offer_id].fees + sources[offer_id].earnings == 40000
    assert sources[None].gross == 20000
    assert sources[offer_id].label == "Offer: Interview sprint"
    page = admin_client.get("/admin/payments").get_data(as_text=True)
    assert 'id="revenue-sources"' in page
    assert "Offer: Interview sprint" in page
    assert 'data-offer="proposals"' in page


def test_a_coachs_offers_are_on_the_admin_user_page(admin_client, sold):
    coach_id, offer_id, _bought, _proposed = sold
    listing = admin_client.get("/admin/users").get_data(as_text=True)
    assert 'data-offers="2"' in listing
    page = admin_client.get(f"/admin/users?user_id={coach_id}").get_data(as_text=True)
    assert 'id="offer-list"' in page
    assert "Interview sprint" in page and "Career review" in page
    assert 'data-status="paused"' in page
    assert "/c/maya" in page


def test_the_admin_contract_page_names_its_offer(admin_client, sold):
    _coach_id, offer_id, bought, proposed = sold
    page = admin_client.get(f"/admin/contracts/{bought}").get_data(as_text=True)
    assert 'id="contract-offer"' in page
    assert f"#{offer_id}" in page
    assert 'id="contract-offer"' not in admin_client.get(
        f"/admin/contracts/{proposed}").get_data(as_text=True)


def test_a_closed_days_revenue_by_source_comes_from_the_rollup(db, sold, clock):
    """The nightly rollup keeps each day's figures by source: once the day has closed, the
    dashboard reads the split from the stored rows, and it is the live one."""
    from datetime import timedelta

    from admin.analytics import dashboard, rollup
    from admin.models import DailyPaymentStats

    _coach_id, offer_id, _bought, _proposed = sold
    day = clock.now().date()
    live = {s.offer_id: (s.gross, s.fees, s.earnings) for s in dashboard(day, day).sources}
    clock.advance(timedelta(days=1))
    assert rollup(day, day + timedelta(days=1)) == 2
    db.session.commit()
    stored = {row.offer_id: row.gross for row in db.session.scalars(db.select(DailyPaymentStats))}
    assert stored == {0: 20000, offer_id: 40000}
    figures = dashboard(day, day)
    assert figures.stored_days == (day, day)
    assert {s.offer_id: (s.gross, s.fees, s.earnings) for s in figures.sources} == live
    assert figures.currency("usd").gross == 60000  # the sources add up to the day's figures
