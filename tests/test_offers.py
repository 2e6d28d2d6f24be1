"""Offers: plan detection by rules, the coach's pages, the public page and buying."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from urllib.parse import unquote

import pytest
from sqlalchemy import func, select

from contracts.plans import PlanRules, allowed_plans, plans_in_words
from tests.conftest import login
from tests.support import at_once

RULES = PlanRules(minimum_total=Decimal(100), max_instalments=12)
DAY = date(2027, 1, 31)


class Terms:
    """Plan rules as an offer, proposal or contract carries them."""

    def __init__(self, deposit=25, most=3, minimum=None, currency="usd"):
        self.currency = currency
        self.plan_deposit_percent = deposit
        self.plan_max_instalments = most
        self.plan_minimum_total = minimum


# --- plan detection --------------------------------------------------------------------


def test_rules_give_every_plan_from_two_to_the_coachs_most():
    plans = allowed_plans(Terms(deposit=25, most=3), 40000, RULES, DAY)
    assert [p.instalments for p in plans] == [2, 3]
    three = plans[-1]
    assert three.deposit == 10000
    assert [c.amount for c in three.charges] == [10000, 10000, 10000, 10000]
    assert [c.due_on for c in three.charges][1:] == [
        date(2027, 2, 28), date(2027, 3, 31), date(2027, 4, 30)]
    assert plans_in_words(40000, "usd", plans) == (
        "$400.00 in full, or $100.00 now and 3 × $100.00 monthly")


def test_no_plan_rules_give_no_plans():
    assert allowed_plans(Terms(deposit=None, most=None), 40000, RULES, DAY) == []
    assert plans_in_words(40000, "usd", []) == "$400.00 in full"


def test_a_total_under_the_platform_minimum_gets_no_plan():
    assert allowed_plans(Terms(), 9999, RULES, DAY) == []
    assert [p.instalments for p in allowed_plans(Terms(), 10000, RULES, DAY)] == [2, 3]


def test_the_coachs_own_minimum_applies_when_higher_than_the_platforms():
    assert allowed_plans(Terms(minimum=30000), 29900, RULES, DAY) == []
    assert len(allowed_plans(Terms(minimum=30000), 30000, RULES, DAY)) == 2
    # Lower than the platform's: the platform's still applies.
    assert allowed_plans(Terms(minimum=5000), 9000, RULES, DAY) == []


def test_the_platforms_most_instalments_caps_the_coachs():
    rules = PlanRules(minimum_total=Decimal(100), max_instalments=4)
    assert [p.instalments for p in allowed_plans(Terms(most=12), 120000, rules, DAY)] == [
        2, 3, 4]


def test_plans_whose_charges_would_be_too_small_are_left_out():
    # $6.00 with a 10 % deposit ($0.60): $5.40 in 11 instalments would be $0.49 each,
    # under Stripe's $0.50 minimum charge.
    rules = PlanRules(minimum_total=Decimal(0), max_instalments=12)
    plans = allowed_plans(Terms(deposit=10, most=12), 600, rules, DAY)
    assert [p.instalments for p in plans] == list(range(2, 11))


# --- helpers -------------------------------------------------------------------------


OFFER_FORM = {
    "title": "Interview sprint",
    "description": "Four mock interviews with written feedback.",
    "session_count": "4",
    "minutes_per_session": "60",
    "currency": "usd",
    "price_per_session": "100",
    "offer_plan": "y",
    "plan_deposit_percent": "25",
    "plan_max_instalments": "3",
    "plan_minimum_total": "",
}


@pytest.fixture
def coach(make_user, app):
    from accounts.services import update_public_page
    from extensions import db

    user = make_user("coach", name="Maya Lopez", timezone="America/New_York")
    with app.app_context():
        row = db.session.merge(user)
        update_public_page(row, slug="maya", bio="Ten years of interviews.")
        db.session.commit()
        db.session.refresh(row)
        db.session.expunge(row)  # merged later as it is now, slug included
        return row


@pytest.fixture
def make_offer(app, coach):
    from extensions import db
    from offers.services import create_offer

    def make(owner=None, **terms) -> int:
        values = {
            "title": "Interview sprint",
            "description": "Four mock interviews.",
            "session_count": 4,
            "minutes_per_session": 60,
            "price_per_session": 10000,
            "currency": "usd",
            "plan_deposit_percent": 25,
            "plan_max_instalments": 3,
            "plan_minimum_total": None,
        } | terms
        with app.app_context():
            offer = create_offer(db.session.merge(owner or coach), **values)
            db.session.commit()
            return offer.id

    return make


def count(db, model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def buy(client, offer_id: int, slug: str = "maya"):
    return client.submit(f"/c/{slug}/offers/{offer_id}/buy")


# --- the coach's pages ---------------------------------------------------------------


def test_a_coach_makes_an_offer_and_it_is_audited(client, db, coach):
    from audit.models import AuditEntry
    from offers.models import Offer, OfferStatus

    login(client, coach)
    response = client.submit("/offers/new", OFFER_FORM | {"plan_minimum_total": "300"})
    assert response.status_code == 302
    offer = db.session.scalar(select(Offer))
    assert (offer.title, offer.price_per_session, offer.session_count) == (
        "Interview sprint", 10000, 4)
    assert (offer.plan_deposit_percent, offer.plan_max_instalments,
            offer.plan_minimum_total) == (25, 3, 30000)
    assert offer.status is OfferStatus.ACTIVE
    assert db.session.scalar(select(AuditEntry.action).where(
        AuditEntry.object_type == "offers")) == "offer.created"
    page = client.get("/offers/").get_data(as_text=True)
    assert "Interview sprint" in page
    assert "$400.00 in full, or $100.00 now and 3 × $100.00 monthly" in page


@pytest.mark.parametrize(("change", "field_error"), [
    ({"price_per_session": "abc"}, "price"),
    ({"session_count": "0"}, "session"),
    ({"title": ""}, "required"),
    ({"plan_deposit_percent": "90"}, "deposit is between"),
    ({"price_per_session": "10"}, "Plans are offered for totals"),
    ({"plan_minimum_total": "-3"}, "plan_minimum_total"),
])
def test_bad_offer_terms_are_shown_and_nothing_is_written(client, db, coach, change,
                                                          field_error):
    from offers.models import Offer

    login(client, coach)
    response = client.submit("/offers/new", OFFER_FORM | change)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert 'aria-invalid="true"' in page
    assert field_error.lower() in page.lower()
    assert count(db, Offer) == 0


def test_students_have_no_offers_pages(client, make_user):
    login(client, make_user("student"))
    assert client.get("/offers/").status_code == 403
    assert client.get("/offers/new").status_code == 403


def test_a_coach_edits_pauses_resumes_and_archives_an_offer(client, db, coach, make_offer):
    from offers.models import Offer, OfferStatus

    offer_id = make_offer()
    login(client, coach)
    form = client.get(f"/offers/{offer_id}/edit").get_data(as_text=True)
    assert 'value="100.00"' in form or 'value="100"' in form
    assert client.submit(f"/offers/{offer_id}/edit",
                         OFFER_FORM | {"price_per_session": "120"}).status_code == 302
    for action, status in [("pause", OfferStatus.PAUSED), ("resume", OfferStatus.ACTIVE),
                           ("archive", OfferStatus.ARCHIVED)]:
        assert client.submit(f"/offers/{offer_id}/status", {"action": action}).status_code == 302
        db.session.expire_all()
        assert db.session.get(Offer, offer_id).status is status
    assert db.session.get(Offer, offer_id).price_per_session == 12000
    # Archived for good.
    client.submit(f"/offers/{offer_id}/status", {"action": "resume"})
    db.session.expire_all()
    assert db.session.get(Offer, offer_id).status is OfferStatus.ARCHIVED


def test_another_coachs_offer_is_not_found(client, make_user, make_offer):
    offer_id = make_offer()
    login(client, make_user("coach"))
    assert client.get(f"/offers/{offer_id}/edit").status_code == 404
    assert client.submit(f"/offers/{offer_id}/status", {"action": "pause"}).status_code == 404


# --- slugs and the public page ------------------------------------------------------


def test_the_public_page_is_readable_logged_out(client, make_offer, app):
    from extensions import db
    from offers.models import Offer, OfferStatus

    make_offer()
    paused = make_offer(title="Paused offer")
    with app.app_context():
        db.session.get(Offer, paused).status = OfferStatus.PAUSED
        db.session.commit()
    response = client.get("/c/maya")
    assert response.status_code == 200, response.get_data(as_text=True)[-3000:]
    page = response.get_data(as_text=True)
    assert "Maya Lopez" in page
    assert "Ten years of interviews." in page
    assert "New York" in page
    assert "Interview sprint" in page
    assert "Paused offer" not in page
    assert "$400.00 in full, or $100.00 now and 3 × $100.00 monthly" in page
    assert "$100.00 now, then 2 monthly instalments of $150.00" in page


def test_an_unknown_slug_is_a_404(client):
    assert client.get("/c/nobody-here").status_code == 404


def test_a_changed_slug_keeps_the_old_one_redirecting(client, db, coach, make_offer):
    offer_id = make_offer()
    login(client, coach)
    response = client.submit("/settings/public-page", {"slug": "maya-lopez", "bio": "New bio"})
    assert response.status_code == 302
    old = client.get("/c/maya")
    assert old.status_code == 301
    assert old.headers["Location"].endswith("/c/maya-lopez")
    deep = client.get(f"/c/maya/offers/{offer_id}/buy")
    assert deep.status_code == 301
    assert deep.headers["Location"].endswith(f"/c/maya-lopez/offers/{offer_id}/buy")
    assert "New bio" in client.get("/c/maya-lopez").get_data(as_text=True)
    # Taking the old one back makes it current again, and the other one old.
    client.submit("/settings/public-page", {"slug": "maya", "bio": ""})
    assert client.get("/c/maya").status_code == 200
    assert client.get("/c/maya-lopez").status_code == 301


@pytest.mark.parametrize(("slug", "error"), [
    ("Maya Lopez", "lowercase letters"),
    ("maya_lopez", "lowercase letters"),
    ("-maya", "lowercase letters"),
    ("ab", "3 to 60"),
    ("taken", "Another coach has this address"),
    ("retired", "Another coach had this address"),
])
def test_a_slug_must_be_well_formed_and_free(client, db, coach, make_user, app, slug, error):
    from accounts.models import User
    from accounts.services import update_public_page
    from extensions import db as ext_db

    other = make_user("coach")
    with app.app_context():
        other_row = ext_db.session.merge(other)
        update_public_page(other_row, slug="retired", bio="")
        update_public_page(other_row, slug="taken", bio="")
        ext_db.session.commit()
    login(client, coach)
    response = client.submit("/settings/public-page", {"slug": slug, "bio": ""})
    assert response.status_code == 200
    assert error in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(User, coach.id).slug == "maya"


def test_students_have_no_public_page_settings(client, make_user):
    login(client, make_user("student"))
    assert client.submit("/settings/public-page", {"slug": "ana"}).status_code == 403
    assert "Public page" not in client.get("/settings/").get_data(as_text=True)


# --- buying -------------------------------------------------------------------------


def test_a_logged_out_visitor_registers_and_comes_back_to_buy(client, db, make_offer):
    from contracts.models import Contract, ContractStatus

    offer_id = make_offer()
    target = f"/c/maya/offers/{offer_id}/buy"
    first = client.get(target)
    assert first.status_code == 302
    assert "/auth/login" in first.headers["Location"]
    assert f"next={target.replace('/', '%2F')}" in first.headers["Location"]
    login_page = client.get(first.headers["Location"]).get_data(as_text=True)
    [register_link] = re.findall(r'href="(/auth/register\?next=[^"]+)"', login_page)
    assert unquote(register_link.split("next=")[1]) == target
    registered = client.submit(register_link, {
        "name": "Ana Student", "email": "ana@example.com", "password": "a-long-password",
        "confirm": "a-long-password", "role": "student", "timezone": "UTC"})
    assert registered.status_code == 302
    assert registered.headers["Location"] == target
    page = client.get(target).get_data(as_text=True)
    assert "Book &amp; pay" in page
    bought = buy(client, offer_id)
    assert bought.status_code == 302
    contract = db.session.scalar(select(Contract))
    assert bought.headers["Location"] == f"/contracts/{contract.id}/pay"
    assert contract.offer_id == offer_id
    assert contract.proposal.offer_id == offer_id
    assert contract.status is ContractStatus.PENDING
    assert (contract.total_amount, contract.plan_deposit_percent,
            contract.plan_max_instalments) == (40000, 25, 3)
    pay = client.get(f"/contracts/{contract.id}/pay")
    assert pay.status_code == 200
    assert "3" in pay.get_data(as_text=True)


def test_a_second_purchase_goes_back_to_the_same_contract(client, db, make_offer, make_user):
    from contracts.models import Contract, Proposal

    offer_id = make_offer()
    login(client, make_user("student"))
    first = buy(client, offer_id)
    second = buy(client, offer_id)
    assert first.headers["Location"] == second.headers["Location"]
    assert count(db, Contract) == 1
    assert count(db, Proposal) == 1
    assert "already have an unpaid contract" in client.get(
        second.headers["Location"]).get_data(as_text=True)


def test_a_cancelled_purchase_lets_the_student_buy_again(client, db, make_offer, make_user):
    from contracts.models import Contract

    offer_id = make_offer()
    login(client, make_user("student"))
    first = buy(client, offer_id).headers["Location"]
    contract_id = int(first.split("/")[2])
    client.submit(f"/contracts/{contract_id}/cancel", {"reason": "Wrong offer"})
    second = buy(client, offer_id).headers["Location"]
    assert second != first
    assert count(db, Contract) == 2


@pytest.mark.parametrize("status", ["paused", "archived"])
def test_paused_and_archived_offers_cannot_be_bought(client, db, app, make_offer, make_user,
                                                     status):
    from contracts.models import Contract
    from extensions import db as ext_db
    from offers.models import Offer, OfferStatus

    offer_id = make_offer()
    with app.app_context():
        ext_db.session.get(Offer, offer_id).status = OfferStatus(status)
        ext_db.session.commit()
    login(client, make_user("student"))
    response = buy(client, offer_id)
    assert response.status_code == 302
    assert response.headers["Location"] == "/c/maya"
    message = client.get("/c/maya").get_data(as_text=True)
    assert ("paused by the coach" if status == "paused" else "no longer available") in message
    assert count(db, Contract) == 0
    assert "buy-refusal" in client.get(f"/c/maya/offers/{offer_id}/buy").get_data(as_text=True)


def test_a_coach_cannot_buy_their_own_offer_nor_anothers(client, db, coach, make_offer,
                                                         make_user):
    from contracts.models import Contract

    offer_id = make_offer()
    login(client, coach)
    buy(client, offer_id)
    assert "your own offer" in client.get("/c/maya").get_data(as_text=True)
    client.post("/auth/logout", data={"csrf_token": client.csrf_token()})
    login(client, make_user("coach"))
    buy(client, offer_id)
    assert "Only student accounts" in client.get("/c/maya").get_data(as_text=True)
    assert count(db, Contract) == 0


def test_an_offer_of_another_coach_is_not_found_under_this_page(client, make_user, make_offer,
                                                               app):
    from accounts.services import update_public_page
    from extensions import db

    other = make_user("coach")
    with app.app_context():
        other = db.session.merge(other)
        update_public_page(other, slug="tomas", bio="")
        db.session.commit()
        db.session.refresh(other)
        db.session.expunge(other)
    offer_id = make_offer(owner=other)
    login(client, make_user("student"))
    assert buy(client, offer_id, slug="maya").status_code == 404


def test_the_contract_keeps_its_terms_when_the_offer_changes(client, db, coach, make_offer,
                                                             make_user):
    from contracts.models import Contract

    offer_id = make_offer()
    login(client, make_user("student"))
    buy(client, offer_id)
    client.post("/auth/logout", data={"csrf_token": client.csrf_token()})
    login(client, coach)
    client.submit(f"/offers/{offer_id}/edit", OFFER_FORM | {
        "title": "New title", "price_per_session": "250", "session_count": "6",
        "offer_plan": ""})
    client.submit(f"/offers/{offer_id}/status", {"action": "archive"})
    contract = db.session.scalar(select(Contract))
    assert (contract.title, contract.price_per_session, contract.session_count,
            contract.total_amount, contract.plan_deposit_percent) == (
        "Interview sprint", 10000, 4, 40000, 25)
    assert contract.proposal.title == "Interview sprint"
    page = client.get(f"/contracts/{contract.id}").get_data(as_text=True)
    assert 'id="from-offer"' in page and "Interview sprint" in page


def test_the_coachs_plan_minimum_travels_to_the_pay_page(app, db, make_offer, make_user):
    from contracts.models import Contract
    from offers.services import buy_offer
    from payments import plan_terms

    offer_id = make_offer(plan_minimum_total=50000)
    student = make_user("student")
    with app.test_request_context():
        contract, _ = buy_offer(offer_id, db.session.merge(student))
        db.session.commit()
        contract = db.session.get(Contract, contract.id)
        assert contract.plan_minimum_total == 50000
        assert plan_terms.options(contract) == []
        assert "$500.00 or more" in plan_terms.refusal(contract, 2)


def test_the_database_keeps_one_pending_contract_per_student_and_offer(app, db, make_offer,
                                                                       make_user):
    from sqlalchemy.exc import IntegrityError

    from contracts.services import accept_offered_terms
    from offers.models import Offer

    offer_id = make_offer()
    student = make_user("student")
    with app.test_request_context():
        offer = db.session.get(Offer, offer_id)
        me = db.session.merge(student)
        accept_offered_terms(offer.coach, me, offer, offer_id=offer.id)
        db.session.commit()
        with pytest.raises(IntegrityError):
            accept_offered_terms(offer.coach, me, offer, offer_id=offer.id)
            db.session.flush()
        db.session.rollback()


@pytest.mark.postgres
def test_two_tabs_buying_at_once_make_one_contract(app, db, make_offer, make_user):
    from contracts.models import Contract
    from offers.services import buy_offer

    offer_id = make_offer()
    for _ in range(3):  # a few rounds: the lock, not luck, decides
        student = make_user("student")

        def tab(student) -> tuple[int, bool]:
            contract, new = buy_offer(offer_id, db.session.merge(student))
            db.session.commit()
            return contract.id, new

        outcomes = at_once(app, tab, [student, student])
        assert len(outcomes) == 2
        assert outcomes[0][0] == outcomes[1][0]
        assert sorted(new for _, new in outcomes) == [False, True]
        assert count(db, Contract, Contract.student_id == student.id) == 1


def test_the_demo_coaches_have_public_pages_with_offers(runner, client):
    result = runner.invoke(args=["demo-data"])
    assert result.exit_code == 0, result.output
    assert "/c/maya-lindqvist" in result.output
    maya = client.get("/c/maya-lindqvist").get_data(as_text=True)
    assert "Maya Lindqvist" in maya and "Leadership sprint" in maya
    assert "Interview preparation" in maya
    assert "Executive coaching quarter" not in maya  # paused
    assert "$600.00 in full, or $150.00 now and 3 × $150.00 monthly" in maya
    tomas = client.get("/c/tomas-ferreira").get_data(as_text=True)
    assert "Portuguese conversation pack" in tomas and "Marathon training block" in tomas
