"""A coach offers a payment plan on a proposal; accepting copies it onto the contract."""

from __future__ import annotations

import html as html_lib
import re

import pytest
from sqlalchemy import func, select

from contracts.models import Contract, Proposal
from tests.conftest import login

PROPOSAL_FORM = {
    "student_email": "student@example.com",
    "title": "Interview coaching",
    "description": "Mock interviews with written feedback.",
    "session_count": "4",
    "minutes_per_session": "60",
    "currency": "usd",
    "price_per_session": "50.00",
}
DEPOSIT_RANGE = "The deposit is between 10 and 50 %."
WITH_PLAN = {"offer_plan": "y", "plan_deposit_percent": "25", "plan_max_instalments": "3"}


@pytest.fixture
def coach(make_user):
    return make_user("coach", email="coach@example.com", name="Maya Coach")


@pytest.fixture
def student(make_user):
    return make_user("student", email="student@example.com", name="Ana Student")


def proposals(db) -> list[Proposal]:
    db.session.expire_all()
    return list(db.session.scalars(select(Proposal).order_by(Proposal.id)))


def words(html: str) -> str:
    """The page's text with entities decoded and whitespace collapsed."""
    return " ".join(html_lib.unescape(html).split())


def field_errors(html: str, name: str) -> list[str]:
    """The error messages Bootstrap renders right after the input named `name`."""
    tag = re.search(rf'<input[^>]*\bname="{name}"[^>]*>', html)
    assert tag, f"no input {name}"
    if "is-invalid" not in tag.group(0):
        return []
    # The input's group ends with its feedback, before the next form group starts.
    rest = html[tag.end():]
    group = rest[: rest.find('class="mb-3')] if 'class="mb-3' in rest else rest
    return [html_lib.unescape(" ".join(m.split()))
            for m in re.findall(r'class="invalid-feedback[^"]*"[^>]*>(.*?)</div>', group, re.S)]


def test_the_form_offers_a_plan_unticked_with_its_defaults(client, coach):
    login(client, coach)
    html = client.get("/contracts/proposals/new").get_data(as_text=True)
    box = re.search(r'<input[^>]*name="offer_plan"[^>]*>', html).group(0)
    assert 'type="checkbox"' in box and "checked" not in box
    assert re.search(r'<input[^>]*name="plan_deposit_percent"[^>]*value="25"', html)
    assert re.search(r'<input[^>]*name="plan_max_instalments"[^>]*value="3"', html)
    assert "Offer a payment plan" in html


def test_a_proposal_with_a_plan_is_stored_shown_and_copied_to_the_contract(
    client, db, coach, student
):
    login(client, coach)
    response = client.submit("/contracts/proposals/new", PROPOSAL_FORM | WITH_PLAN)
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    [proposal] = proposals(db)
    assert (proposal.plan_deposit_percent, proposal.plan_max_instalments) == (25, 3)

    page = html_lib.unescape(client.get(response.headers["Location"]).get_data(as_text=True))
    offer = re.search(r'id="plan-offer">(.*?)</div>', page, re.S).group(1)
    assert " ".join(offer.split()) == (
        "Pay in full, or a 25 % deposit and up to 3 monthly instalments")

    # The student sees it too, and accepting copies it onto the contract.
    client.submit("/auth/logout")
    login(client, student)
    assert "a 25 % deposit and up to 3 monthly instalments" in words(
        client.get(f"/contracts/proposals/{proposal.id}").get_data(as_text=True))
    accepted = client.submit(f"/contracts/proposals/{proposal.id}/accept")
    assert accepted.status_code == 302
    contract = db.session.scalar(select(Contract).filter_by(proposal_id=proposal.id))
    assert (contract.plan_deposit_percent, contract.plan_max_instalments) == (25, 3)
    assert contract.plan_instalments is None and contract.amount_paid == 0
    detail = words(client.get(f"/contracts/{contract.id}").get_data(as_text=True))
    assert "Or a 25 % deposit and up to 3 monthly instalments" in detail
    assert 'id="payment-plan"' not in detail  # no plan chosen yet


def test_unticked_the_plan_fields_are_ignored_even_when_not_numbers(client, db, coach, student):
    login(client, coach)
    response = client.submit(
        "/contracts/proposals/new",
        PROPOSAL_FORM | {"plan_deposit_percent": "abc", "plan_max_instalments": "99"},
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    [proposal] = proposals(db)
    assert (proposal.plan_deposit_percent, proposal.plan_max_instalments) == (None, None)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert 'id="plan-offer"' not in page


def test_unticked_the_plan_fields_may_be_left_out_and_come_back_with_their_defaults(
    client, db, coach, student
):
    # The page's script disables them while the box is unticked, and a browser posts no
    # disabled field.
    login(client, coach)
    refused = client.submit("/contracts/proposals/new", PROPOSAL_FORM | {"title": ""})
    html = refused.get_data(as_text=True)
    assert re.search(r'<input[^>]*name="plan_deposit_percent"[^>]*value="25"', html)
    assert re.search(r'<input[^>]*name="plan_max_instalments"[^>]*value="3"', html)
    assert client.submit("/contracts/proposals/new", PROPOSAL_FORM).status_code == 302
    [proposal] = proposals(db)
    assert (proposal.plan_deposit_percent, proposal.plan_max_instalments) == (None, None)


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"plan_deposit_percent": "5"}, "plan_deposit_percent", DEPOSIT_RANGE),
        ({"plan_deposit_percent": "51"}, "plan_deposit_percent", DEPOSIT_RANGE),
        ({"plan_deposit_percent": ""}, "plan_deposit_percent", "Give the deposit, in percent."),
        ({"plan_max_instalments": "1"}, "plan_max_instalments",
         "Allow between 2 and 12 monthly instalments."),
        ({"plan_max_instalments": "13"}, "plan_max_instalments",
         "Allow between 2 and 12 monthly instalments."),
        ({"plan_max_instalments": ""}, "plan_max_instalments",
         "Give the most instalments you allow."),
        ({"plan_max_instalments": "three"}, "plan_max_instalments", "Not a valid integer value."),
    ],
)
def test_plan_terms_out_of_range_are_refused_on_their_field(
    client, db, coach, student, change, field, message
):
    login(client, coach)
    response = client.submit("/contracts/proposals/new", PROPOSAL_FORM | WITH_PLAN | change)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert message in field_errors(html, field)
    other = ({"plan_deposit_percent", "plan_max_instalments"} - {field}).pop()
    assert field_errors(html, other) == []
    assert proposals(db) == []


def test_the_most_instalments_follow_the_setting(app, client, db, coach, student):
    app.config["PLAN_MAX_INSTALMENTS"] = 6
    login(client, coach)
    response = client.submit(
        "/contracts/proposals/new", PROPOSAL_FORM | WITH_PLAN | {"plan_max_instalments": "7"}
    )
    assert response.status_code == 200
    assert field_errors(response.get_data(as_text=True), "plan_max_instalments") == [
        "Allow between 2 and 6 monthly instalments."]
    assert proposals(db) == []
    ok = client.submit(
        "/contracts/proposals/new", PROPOSAL_FORM | WITH_PLAN | {"plan_max_instalments": "6"}
    )
    assert ok.status_code == 302
    assert proposals(db)[0].plan_max_instalments == 6


def test_a_plan_on_a_total_under_the_minimum_is_refused_on_the_checkbox(client, db, coach,
                                                                           student):
    login(client, coach)
    response = client.submit(
        "/contracts/proposals/new",
        PROPOSAL_FORM | WITH_PLAN | {"session_count": "1", "price_per_session": "60.00"},
    )
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert field_errors(html, "offer_plan") == [
        "Plans are offered for totals of $100.00 or more."]
    assert proposals(db) == []
    # Without the plan the same terms go out, paid in full.
    plain = client.submit(
        "/contracts/proposals/new",
        PROPOSAL_FORM | {"session_count": "1", "price_per_session": "60.00"},
    )
    assert plain.status_code == 302


def test_the_service_refuses_half_a_plan(app, db, coach, student):
    from contracts.services import ProposalError, send_proposal

    terms = {"student_email": student.email, "title": "T", "description": "D",
             "session_count": 4, "minutes_per_session": 60, "price_per_session": 5000,
             "currency": "usd"}
    with pytest.raises(ProposalError):
        send_proposal(db.session.merge(coach), **terms, plan_deposit_percent=25)
    with pytest.raises(ProposalError):
        send_proposal(db.session.merge(coach), **terms, plan_deposit_percent=25,
                      plan_max_instalments=20)
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Proposal)) == 0
    proposal = send_proposal(db.session.merge(coach), **terms)
    assert (proposal.plan_deposit_percent, proposal.plan_max_instalments) == (None, None)
