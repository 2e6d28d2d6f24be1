"""Proposals, their transitions, contracts and who may see them."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from markupsafe import escape
from sqlalchemy import func, select

from contracts.models import Contract, ContractStatus, PaymentStatus, Proposal, ProposalStatus
from contracts.money import CURRENCY_DECIMALS, MIN_CHARGE_AMOUNT, format_money, to_major
from tests.conftest import login

PROPOSAL_FORM = {
    "title": "Interview coaching",
    "description": "Mock interviews with written feedback.",
    "session_count": "4",
    "minutes_per_session": "60",
    "currency": "usd",
    "price_per_session": "50.00",
}


def count(db, model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def coach(make_user):
    return make_user("coach", email="coach@example.com", name="Maya Coach")


@pytest.fixture
def student(make_user):
    return make_user("student", email="student@example.com", name="Ana Student")


def test_coach_sends_a_proposal(client, db, coach, student):
    login(client, coach)
    response = client.submit(
        "/contracts/proposals/new", PROPOSAL_FORM | {"student_email": "STUDENT@example.com"}
    )
    assert response.status_code == 302
    proposal = db.session.scalar(select(Proposal))
    assert proposal.student_id == student.id and proposal.coach_id == coach.id
    assert proposal.price_per_session == 5000 and proposal.status is ProposalStatus.SENT
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "$200.00" in page and "Withdraw proposal" in page


def test_coach_sends_a_proposal_to_a_demo_address(client, db, coach, make_user):
    # The demo students have `.test` addresses (demo.py); a coach must be able to reach them.
    ana = make_user("student", email="ana@coachpact.test", name="Ana Ruiz")
    login(client, coach)
    response = client.submit(
        "/contracts/proposals/new", PROPOSAL_FORM | {"student_email": "ana@coachpact.test"}
    )
    assert response.status_code == 302
    proposal = db.session.scalar(select(Proposal))
    assert proposal.student_id == ana.id and proposal.coach_id == coach.id


def test_students_cannot_send_proposals(client, db, student):
    login(client, student)
    assert client.get("/contracts/proposals/new").status_code == 403
    response = client.submit(
        "/contracts/proposals/new", PROPOSAL_FORM | {"student_email": student.email}
    )
    assert response.status_code == 403
    assert count(db, Proposal) == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"title": ""}, "This field is required."),
        ({"title": "x" * 121}, "Field cannot be longer than 120 characters."),
        ({"description": ""}, "This field is required."),
        ({"price_per_session": "-10"}, "The amount must be more than zero."),
        ({"price_per_session": "ten dollars"}, "Enter an amount such as 45.00."),
        ({"price_per_session": ""}, "This field is required."),
        ({"price_per_session": "10.001"}, "USD takes at most 2 decimals."),
        ({"currency": "jpy", "price_per_session": "5000.5"}, "JPY has no minor unit."),
        ({"currency": "doge"}, "Not a valid choice."),
        ({"session_count": "0"}, "Number must be between 1 and 100."),
        ({"session_count": "101"}, "Number must be between 1 and 100."),
        ({"session_count": "four"}, "Not a valid integer value."),
        ({"minutes_per_session": "10"}, "Number must be between 15 and 240."),
        ({"student_email": "nobody@example.com"}, "There is no student with this email"),
        ({"student_email": "coach@example.com"}, "There is no student with this email"),
        (
            {"price_per_session": "999999.99", "session_count": "100"},
            "larger than a single payment",
        ),
    ],
)
def test_bad_proposal_input_shows_errors_and_writes_nothing(
    client, db, coach, student, change, message
):
    login(client, coach)
    data = PROPOSAL_FORM | {"student_email": student.email} | change
    response = client.submit("/contracts/proposals/new", data)
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert count(db, Proposal) == 0


# Stripe's minimum charge on its own: at that total the minimum platform fee takes it all,
# which MINIMUM_COACH_EARNING_PERCENT refuses otherwise (tests/test_proposal_form.py).
NO_EARNING_MINIMUM = {"MINIMUM_COACH_EARNING_PERCENT": Decimal(0)}


def minimum_message(currency: str) -> str:
    shown = format_money(MIN_CHARGE_AMOUNT[currency], currency)
    return f"The total must be at least {shown}, Stripe's minimum charge in {currency.upper()}."


def test_a_total_below_stripes_minimum_is_refused_on_the_price_field(client, db, coach, student):
    # 4 sessions at $0.01: $0.04, which Checkout would refuse for ever.
    login(client, coach)
    data = PROPOSAL_FORM | {"student_email": student.email, "price_per_session": "0.01"}
    response = client.submit("/contracts/proposals/new", data)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert str(escape(minimum_message("usd"))) in page
    assert "The total must be at least $0.50" in page
    assert count(db, Proposal) == 0


@pytest.mark.parametrize("app_overrides", [NO_EARNING_MINIMUM])
@pytest.mark.parametrize("currency", sorted(CURRENCY_DECIMALS))
def test_the_proposal_form_takes_the_minimum_and_refuses_one_minor_unit_less(
    client, db, coach, student, currency
):
    login(client, coach)
    minimum = MIN_CHARGE_AMOUNT[currency]
    data = PROPOSAL_FORM | {"student_email": student.email, "currency": currency}
    data["session_count"] = "1"

    data["price_per_session"] = str(to_major(minimum - 1, currency))
    refused = client.submit("/contracts/proposals/new", data)
    assert refused.status_code == 200
    assert str(escape(minimum_message(currency))) in refused.get_data(as_text=True)
    assert count(db, Proposal) == 0

    data["price_per_session"] = str(to_major(minimum, currency))
    assert client.submit("/contracts/proposals/new", data).status_code == 302
    proposal = db.session.scalar(select(Proposal))
    assert (proposal.total, proposal.currency) == (minimum, currency)


@pytest.mark.parametrize("app_overrides", [NO_EARNING_MINIMUM])
@pytest.mark.parametrize("currency", sorted(CURRENCY_DECIMALS))
def test_send_proposal_checks_the_minimum_over_the_whole_total(
    app, coach, student, make_proposal, currency
):
    from contracts.money import MoneyError

    minimum = MIN_CHARGE_AMOUNT[currency]
    # Two sessions: the total, not the price per session, must reach the minimum.
    assert make_proposal(
        coach, student, currency=currency, price_per_session=minimum // 2, session_count=2
    )
    with pytest.raises(MoneyError, match="Stripe's minimum charge"):
        make_proposal(
            coach, student, currency=currency, price_per_session=minimum - 1, session_count=1
        )


def test_accepting_an_old_proposal_below_the_minimum_makes_no_contract(
    app, client, db, coach, student
):
    # Sent before the minimum was checked: written as it was then.
    proposal = Proposal(
        coach_id=coach.id,
        student_id=student.id,
        title="Tiny",
        description="Four cents.",
        session_count=4,
        minutes_per_session=60,
        price_per_session=1,
        currency="usd",
    )
    db.session.add(proposal)
    db.session.commit()
    login(client, student)
    assert client.get(f"/contracts/proposals/{proposal.id}").status_code == 200
    response = client.submit(f"/contracts/proposals/{proposal.id}/accept", follow_redirects=True)
    assert str(escape(minimum_message("usd"))) in response.get_data(as_text=True)
    assert count(db, Contract) == 0
    assert db.session.get(Proposal, proposal.id).status is ProposalStatus.SENT


def test_accept_creates_one_contract_with_a_snapshot_and_goes_to_pay(
    client, db, coach, student, make_proposal
):
    proposal_id = make_proposal(coach, student, price_per_session=3333, session_count=3)
    login(client, student)
    response = client.submit(f"/contracts/proposals/{proposal_id}/accept")
    contract = db.session.scalar(select(Contract))
    assert response.status_code == 302
    assert response.headers["Location"] == f"/contracts/{contract.id}/pay"
    assert contract.status is ContractStatus.PENDING
    assert contract.payment_status is PaymentStatus.PENDING
    assert (contract.total_amount, contract.platform_fee, contract.coach_earning) == (
        9999,
        500,
        9499,
    )
    assert (contract.session_count, contract.minutes_per_session, contract.currency) == (
        3,
        60,
        "usd",
    )
    assert db.session.get(Proposal, proposal_id).status is ProposalStatus.ACCEPTED
    pay = client.get(f"/contracts/{contract.id}/pay").get_data(as_text=True)
    assert "$99.99" in pay and "Pay $99.99 securely with Stripe" in pay


def test_accept_posted_twice_makes_one_contract(client, db, student, make_proposal):
    proposal_id = make_proposal(student=student)
    login(client, student)
    assert client.submit(f"/contracts/proposals/{proposal_id}/accept").status_code == 302
    second = client.submit(f"/contracts/proposals/{proposal_id}/accept", follow_redirects=True)
    assert "This proposal was accepted already." in second.get_data(as_text=True)
    assert count(db, Contract) == 1


def test_contract_terms_do_not_follow_later_fee_changes(app, client, db, student, make_proposal):
    proposal_id = make_proposal(student=student, price_per_session=10000, session_count=1)
    login(client, student)
    client.submit(f"/contracts/proposals/{proposal_id}/accept")
    app.config["PLATFORM_FEE_PERCENT"] = 50
    contract = db.session.scalar(select(Contract))
    assert contract.platform_fee == 500


def test_decline_and_withdraw(client, db, coach, student, make_proposal):
    declined = make_proposal(coach, student)
    withdrawn = make_proposal(coach, student)
    login(client, student)
    assert client.submit(f"/contracts/proposals/{declined}/decline").status_code == 302
    client.submit("/auth/logout")
    login(client, coach)
    assert client.submit(f"/contracts/proposals/{withdrawn}/withdraw").status_code == 302
    assert db.session.get(Proposal, declined).status is ProposalStatus.DECLINED
    assert db.session.get(Proposal, withdrawn).status is ProposalStatus.WITHDRAWN
    assert count(db, Contract) == 0


@pytest.mark.parametrize(
    ("first", "then"),
    [
        ("decline", "accept"),
        ("decline", "withdraw"),
        ("withdraw", "accept"),
        ("withdraw", "decline"),
        ("accept", "decline"),
        ("accept", "withdraw"),
    ],
)
def test_answers_in_the_wrong_state_are_refused(
    client, db, coach, student, make_proposal, first, then
):
    proposal_id = make_proposal(coach, student)
    actor = {"accept": student, "decline": student, "withdraw": coach}
    login(client, actor[first])
    client.submit(f"/contracts/proposals/{proposal_id}/{first}")
    client.submit("/auth/logout")
    login(client, actor[then])
    response = client.submit(f"/contracts/proposals/{proposal_id}/{then}", follow_redirects=True)
    text = response.get_data(as_text=True)
    done = {"accept": "accepted", "decline": "declined", "withdraw": "withdrawn"}
    assert (f"This proposal was {done[first]} already, so it can no longer be {done[then]}."
            in text)
    assert "cannot become" not in text
    expected = {
        "accept": ProposalStatus.ACCEPTED,
        "decline": ProposalStatus.DECLINED,
        "withdraw": ProposalStatus.WITHDRAWN,
    }[first]
    assert db.session.get(Proposal, proposal_id).status is expected
    assert count(db, Contract) == (1 if first == "accept" else 0)


@pytest.mark.parametrize(
    ("who", "action"), [("coach", "accept"), ("coach", "decline"), ("student", "withdraw")]
)
def test_the_wrong_party_is_refused(client, db, coach, student, make_proposal, who, action):
    proposal_id = make_proposal(coach, student)
    login(client, coach if who == "coach" else student)
    assert client.submit(f"/contracts/proposals/{proposal_id}/{action}").status_code == 403
    assert db.session.get(Proposal, proposal_id).status is ProposalStatus.SENT
    assert count(db, Contract) == 0


def test_answers_need_a_csrf_token(client, db, student, make_proposal):
    proposal_id = make_proposal(student=student)
    login(client, student)
    assert client.post(f"/contracts/proposals/{proposal_id}/accept").status_code == 400
    assert count(db, Contract) == 0


@pytest.fixture
def accepted(app, db, coach, student, make_proposal):
    """A contract between `coach` and `student`: (contract id, proposal id)."""
    from contracts.services import accept_proposal

    proposal_id = make_proposal(coach, student)
    contract = accept_proposal(proposal_id, db.session.merge(student))
    db.session.commit()
    return contract.id, proposal_id


def contract_urls(contract_id: int, proposal_id: int) -> list[str]:
    return [
        f"/contracts/{contract_id}",
        f"/contracts/{contract_id}/pay",
        f"/contracts/proposals/{proposal_id}",
    ]


def test_a_stranger_gets_404_everywhere(client, make_user, accepted):
    login(client, make_user("student"))
    for url in contract_urls(*accepted):
        assert client.get(url).status_code == 404, url
    contract_id, proposal_id = accepted
    for action in ("accept", "decline", "withdraw"):
        assert client.submit(f"/contracts/proposals/{proposal_id}/{action}").status_code == 404


def test_the_other_party_of_someone_elses_contract_gets_404(
    client, make_user, make_proposal, coach, accepted
):
    # This student has a contract with the same coach, but not this one.
    other_student = make_user("student")
    make_proposal(coach, other_student)
    login(client, other_student)
    for url in contract_urls(*accepted):
        assert client.get(url).status_code == 404, url


def test_an_admin_is_a_stranger_to_contract_urls(client, make_user, accepted):
    login(client, make_user("admin"))
    for url in contract_urls(*accepted):
        assert client.get(url).status_code == 404, url


def test_anonymous_users_are_sent_to_log_in(client, accepted):
    response = client.get(f"/contracts/{accepted[0]}")
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]


def test_the_coach_sees_the_contract_but_not_the_pay_page(client, coach, accepted):
    login(client, coach)
    contract_id, _ = accepted
    page = client.get(f"/contracts/{contract_id}").get_data(as_text=True)
    assert "Your earning" in page and "$190.00" in page
    assert client.get(f"/contracts/{contract_id}/pay").status_code == 404


def test_both_parties_list_the_contract(client, coach, student, accepted):
    for user in (coach, student):
        login(client, user)
        page = client.get("/contracts/").get_data(as_text=True)
        assert f"/contracts/{accepted[0]}" in page
        client.submit("/auth/logout")


@pytest.mark.postgres
def test_concurrent_accepts_make_one_contract(app, database_uri, student, make_proposal):
    from contracts.services import TransitionError, accept_proposal
    from extensions import db

    proposal_id = make_proposal(student=student)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def accept() -> None:
        with app.app_context():
            me = db.session.merge(student)
            barrier.wait()
            try:
                accept_proposal(proposal_id, me)
                db.session.commit()
                outcomes.append("accepted")
            except TransitionError:
                db.session.rollback()
                outcomes.append("refused")

    threads = [threading.Thread(target=accept) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["accepted", "refused"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Contract)) == 1
