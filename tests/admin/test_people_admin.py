"""The console's contracts and users: lists, filters, search, a contract's file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, select

from tests.admin.test_events_admin import ids_on, walk
from tests.conftest import login

NOON = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def people(make_user):
    return {
        "maya": make_user("coach", email="maya@example.com", name="Maya Coach"),
        "leo": make_user("coach", email="leo@example.com", name="Leo Mentor"),
        "ana": make_user("student", email="ana@example.com", name="Ana Student"),
        "tom": make_user("student", email="tom@example.org", name="Tom Learner"),
    }


@pytest.fixture
def make_contract(db, make_proposal):
    """An accepted proposal's contract, pending payment; its id."""
    from contracts.services import accept_proposal

    def make(coach, student, **terms) -> int:
        contract = accept_proposal(make_proposal(coach, student, **terms),
                                   db.session.merge(student))
        db.session.commit()
        return contract.id

    return make


@pytest.fixture
def contracts(app, db, people, make_contract):
    """Maya–Ana paid in usd, Maya–Tom pending in eur, Leo–Ana pending in usd."""
    from contracts.lifecycle import mark_paid
    from contracts.models import Contract

    ids = {
        "maya_ana": make_contract(people["maya"], people["ana"]),
        "maya_tom": make_contract(people["maya"], people["tom"], currency="eur"),
        "leo_ana": make_contract(people["leo"], people["ana"], title="Public speaking"),
    }
    with app.test_request_context():  # the coach's notification links to the contract
        mark_paid(db.session.get(Contract, ids["maya_ana"]), paid_at=NOON, details={},
                  actor_label="stripe:webhook")
        db.session.commit()
    return ids


def shown(client, url: str) -> list[int]:
    return ids_on(client.get(url).get_data(as_text=True), url.split("?")[0].rsplit("/", 1)[1][:-1])


# --- contracts -----------------------------------------------------------------------------


def test_contracts_are_listed_newest_first_with_parties_and_amounts(admin_client, contracts):
    page = admin_client.get("/admin/contracts").get_data(as_text=True)
    assert ids_on(page, "contract") == [contracts["leo_ana"], contracts["maya_tom"],
                                        contracts["maya_ana"]]
    row = page[page.index(f'id="contract-{contracts["maya_tom"]}"'):]
    row = row[:row.index("</tr>")]
    assert "Maya Coach" in row and "tom@example.org" in row and "€200.00" in row
    assert 'data-status="pending"' in row


def test_contract_filters_and_search_narrow_the_list(admin_client, contracts, people):
    c = contracts
    assert shown(admin_client, "/admin/contracts?status=active") == [c["maya_ana"]]
    assert shown(admin_client, "/admin/contracts?payment_status=pending") == [c["leo_ana"],
                                                                             c["maya_tom"]]
    assert shown(admin_client, "/admin/contracts?currency=eur") == [c["maya_tom"]]
    assert shown(admin_client, "/admin/contracts?currency=usd&status=pending") == [c["leo_ana"]]
    assert shown(admin_client, "/admin/contracts?q=maya") == [c["maya_tom"], c["maya_ana"]]
    assert shown(admin_client, "/admin/contracts?q=ANA@EXAMPLE") == [c["leo_ana"], c["maya_ana"]]
    assert shown(admin_client, "/admin/contracts?q=Learner") == [c["maya_tom"]]
    assert shown(admin_client, f"/admin/contracts?q=%23{c['leo_ana']}") == [c["leo_ana"]]
    # "%" is searched for as a character, not used as a wildcard.
    assert shown(admin_client, "/admin/contracts?q=100%25") == []
    assert shown(admin_client, f"/admin/contracts?user_id={people['tom'].id}") == [c["maya_tom"]]
    page = admin_client.get(f"/admin/contracts?user_id={people['tom'].id}").get_data(as_text=True)
    assert "Contracts of <strong>Tom Learner</strong>" in page


def test_contract_pages_have_no_gaps_or_repeats(db, admin_client, people):
    from contracts.models import Contract, Proposal, ProposalStatus

    terms = {"coach_id": people["maya"].id, "student_id": people["ana"].id, "title": "Bulk",
             "description": "-", "session_count": 2, "minutes_per_session": 30,
             "price_per_session": 1000, "currency": "usd"}
    for _ in range(120):
        proposal = Proposal(status=ProposalStatus.ACCEPTED, **terms)
        db.session.add(proposal)
        db.session.add(Contract(proposal=proposal, total_amount=2000, platform_fee=100,
                                coach_earning=1900, **terms))
    db.session.commit()
    every = list(db.session.scalars(select(Contract.id).order_by(Contract.id.desc())))
    seen, pages = walk(admin_client, "/admin/contracts?q=maya", "contract")
    assert seen == every and pages == 3


def test_a_contracts_file(db, app, admin_client, contracts, people):
    from audit.services import record
    from contracts.models import CoachingSession, Contract
    from payments.models import Payment, PaymentRecordStatus

    contract_id = contracts["maya_ana"]
    contract = db.session.get(Contract, contract_id)
    payment = Payment(contract_id=contract_id, checkout_session_id="cs_test_abcdefgh",
                      amount=20000, currency="usd", status=PaymentRecordStatus.SUCCEEDED)
    session = CoachingSession(contract_id=contract_id, coach_id=contract.coach_id,
                              booked_by_id=contract.student_id, starts_at=NOON,
                              ends_at=NOON + timedelta(hours=1), note="Bring your CV")
    db.session.add_all([payment, session])
    db.session.flush()
    record("payment.succeeded", payment, actor_label="stripe")
    record("session.booked", session, actor=db.session.merge(people["ana"]))
    record("contract.paid", db.session.get(Contract, contracts["leo_ana"]))  # another contract
    db.session.commit()

    response = admin_client.get(f"/admin/contracts/{contract_id}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Interview coaching" in page and "4 × 60 min" in page
    assert 'id="total">$200.00<' in page
    assert 'id="fee">$10.00<' in page and 'id="earning">$190.00<' in page
    assert "Maya Coach" in page and "ana@example.com" in page
    assert f'id="payment-{payment.id}"' in page and "abcdefgh" in page
    if "admin.payment_detail" in app.view_functions:
        assert f"/admin/payments/{payment.id}" in page
    assert f'id="session-{session.id}"' in page and "Bring your CV" in page
    trail = page[page.index('id="contract-audit"'):]
    actions = [a for a in ("contract.paid", "payment.succeeded", "session.booked") if a in trail]
    assert actions == ["contract.paid", "payment.succeeded", "session.booked"]
    assert trail.count('data-action="contract.paid"') == 1  # not the other contract's
    assert 'id="manual-payment"' not in page  # paid already


def test_a_pending_contract_offers_a_manual_payment(app, admin_client, contracts):
    page = admin_client.get(f"/admin/contracts/{contracts['leo_ana']}").get_data(as_text=True)
    offered = 'id="manual-payment"' in page
    assert offered == ("admin.manual_payment" in app.view_functions)
    assert admin_client.get("/admin/contracts/999999").status_code == 404


# --- users ---------------------------------------------------------------------------------


def test_users_are_listed_with_their_number_of_contracts(admin_client, admin_user, contracts,
                                                         people, make_user):
    idle = make_user("student", email="idle@example.com", name="Idle Student")
    page = admin_client.get("/admin/users").get_data(as_text=True)
    assert ids_on(page, "user")[:2] == [idle.id, people["tom"].id]

    def count_of(user) -> str:
        row = page[page.index(f'id="user-{user.id}"'):]
        return row[row.index("data-contracts="):].split('"')[1]

    assert count_of(people["maya"]) == "2" and count_of(people["leo"]) == "1"
    assert count_of(people["ana"]) == "2" and count_of(people["tom"]) == "1"
    assert count_of(idle) == "0" and count_of(admin_user) == "0"
    assert f'href="/admin/contracts?user_id={people["maya"].id}">2</a>' in page
    assert 'data-role="coach"' in page


def test_user_filters_and_search(admin_client, admin_user, people):
    p = people
    assert shown(admin_client, "/admin/users?role=coach") == [p["leo"].id, p["maya"].id]
    assert shown(admin_client, "/admin/users?role=admin") == [admin_user.id]
    assert shown(admin_client, "/admin/users?q=example.org") == [p["tom"].id]
    assert shown(admin_client, "/admin/users?q=STUDENT") == [p["ana"].id]
    assert shown(admin_client, "/admin/users?q=an&role=student") == [p["ana"].id]
    assert shown(admin_client, f"/admin/users?user_id={p['leo'].id}") == [p["leo"].id]


def test_user_pages_have_no_gaps_or_repeats_and_one_query_counts(db, app, admin_client):
    from accounts.models import Role, User

    db.session.add_all(User(email=f"bulk{n}@example.com", name=f"Bulk {n}", password_hash="-",
                            role=Role.STUDENT) for n in range(120))
    db.session.commit()
    every = list(db.session.scalars(select(User.id).order_by(User.id.desc())))

    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        seen, pages = walk(admin_client, "/admin/users", "user")
        per_three_pages = len(statements)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert seen == every and pages == 3
    # Fifty users a page with their counts, in a few statements a page (the logged-in
    # user, the unread count, the page itself): never one per user.
    assert per_three_pages <= 3 * 3


# --- nobody else sees any of it -----------------------------------------------------------------


@pytest.mark.parametrize("role", ["student", "coach", None])
def test_contracts_and_users_are_404_to_everyone_but_admins(client, people, contracts, role):
    if role:
        login(client, people["ana" if role == "student" else "maya"])
    for url in ("/admin/contracts", f"/admin/contracts/{contracts['maya_ana']}",
                "/admin/contracts?q=ana", "/admin/users", "/admin/users?role=coach"):
        assert client.get(url).status_code == 404, url
