"""Pay-to-book: the first session's time held while the student pays (`scheduling.holds`).

The app and the Stripe sandbox run as in the other payments suites: Checkout through the
real SDK, Stripe's events delivered, signed, to the app's real webhook. Both clocks (ours
and the sandbox's) start at the same instant, so a session's 30 minutes mean the same on
both sides.

Several students browse at once here, each with a client of their own; the test reads
the database in app contexts of its own (`rows`), never one shared with the clients'
requests (Flask would share its `g`, where the logged-in user and the CSRF token live).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests
from sqlalchemy import select

from tests.conftest import PASSWORD, login
from tests.payments.conftest import API_KEY, deliver
from tests.support import (
    at_once,
    axe_violations,
    describe_violations,
    log_in,
    new_page,
    page_overflow,
    pay_by_card,
    shot,
    wait_for,
)

# A Monday noon, ahead of the sandbox's real clock (which it never runs behind).
T0 = datetime(2030, 3, 4, 12, 0, tzinfo=UTC)
# Wednesday 15:00 UTC (10:00 in New York): inside the coach's default hours, beyond the
# booking notice.
SLOT = datetime(2030, 3, 6, 15, 0, tzinfo=UTC)
SLOT_FOR_ANA = "Wed 06 Mar 2030, 10:00 EST"
DEBIT_OK = "000123456789"


def value(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%MZ")


@pytest.fixture
def sandbox_knobs():
    # A bank debit settles when the test says so, never by the sandbox's clock.
    return {"SANDBOX_ASYNC_SETTLE_SECONDS": "8640000"}


@pytest.fixture(autouse=True)
def both_clocks(clock, sandbox):
    """Our clock frozen at T0 and the sandbox's moved to the same instant."""
    clock.freeze(T0)
    offset = int((T0 - datetime.now(UTC)).total_seconds())
    assert sandbox.tool("clock", offset_seconds=offset).status_code == 200
    return clock


def advance_both(clock, sandbox, delta: timedelta) -> None:
    clock.advance(delta)
    assert sandbox.tool("clock", advance_seconds=int(delta.total_seconds())).status_code == 200


@pytest.fixture
def coach(make_user):
    return make_user("coach", name="Maya Coach", timezone="UTC")


@pytest.fixture
def contract_for(app, make_proposal, coach):
    """contract_for(student, active=False) → the id of a contract with `coach`: pending, or
    active and paid (as real payments leave it, without the Stripe round trip)."""
    from contracts.models import ContractStatus, PaymentStatus
    from contracts.services import accept_proposal
    from extensions import db

    def make(student, *, active: bool = False, **terms) -> int:
        proposal_id = make_proposal(coach, student, **terms)
        with app.app_context():
            contract = accept_proposal(proposal_id, db.session.merge(student))
            if active:
                contract.status = ContractStatus.ACTIVE
                contract.payment_status = PaymentStatus.PAID
                contract.paid_at = T0
                contract.amount_paid = contract.total_amount
            db.session.commit()
            return contract.id

    return make


@pytest.fixture
def rows(app):
    """rows(model, **criteria) → its rows, oldest first, read in an app context of their
    own; rows(Contract, id=..) and the like for one contract's state."""
    from extensions import db

    def read(model, **criteria):
        with app.app_context():
            found = list(db.session.scalars(
                select(model).filter_by(**criteria).order_by(model.id)))
            db.session.expunge_all()
            return found

    return read


@pytest.fixture
def client_of(app):
    """client_of(user) → a test client logged in as `user` (one per user)."""
    clients: dict[int, object] = {}

    def make(user):
        if user.id not in clients:
            clients[user.id] = app.test_client()
            login(clients[user.id], user)
        return clients[user.id]

    return make


@pytest.fixture
def ana(make_user):
    return make_user("student", name="Ana Ruiz", timezone="America/New_York")


@pytest.fixture
def ana_contract(contract_for, ana) -> int:
    return contract_for(ana)


def pay_with(client, contract_id: int, slot: datetime | None, **form):
    data = {"slot": value(slot)} if slot else {}
    return client.submit(f"/contracts/{contract_id}/pay", {**data, **form})


def session_of(response) -> str:
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    return response.headers["Location"].rstrip("/").rsplit("/", 1)[-1]


def state(rows, contract_id: int) -> tuple[str, str]:
    from contracts.models import Contract

    [contract] = rows(Contract, id=contract_id)
    return contract.status.value, contract.payment_status.value


def wait_state(rows, contract_id: int, expected: tuple[str, str]) -> None:
    wait_for(lambda: state(rows, contract_id) == expected, 15,
             f"contract {contract_id} to be {expected}")


def holds_of(rows, contract_id: int):
    from scheduling.models import SlotHold

    return rows(SlotHold, contract_id=contract_id)


def sessions_of(rows, contract_id: int):
    from contracts.models import CoachingSession

    return rows(CoachingSession, contract_id=contract_id)


def payments(rows, contract_id: int):
    from payments.models import Payment

    return rows(Payment, contract_id=contract_id)


def told(rows, user) -> list[str]:
    from notifications.models import Notification

    return [note.message for note in rows(Notification, user_id=user.id)]


def stripe_session(sandbox, session_id: str) -> dict:
    response = requests.get(f"{sandbox.url}/v1/checkout/sessions/{session_id}", timeout=10,
                            headers={"Authorization": f"Bearer {API_KEY}"})
    assert response.status_code == 200, response.text
    return response.json()


def offered(client, contract_id: int, page: str = "schedule") -> str:
    """The booking (or pay) page on SLOT's day, as its viewer sees it."""
    path = f"/contracts/{contract_id}/{page}?day={SLOT.date().isoformat()}"
    response = client.get(path)
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def slot_listed(html: str, moment: datetime) -> bool:
    return f'data-slot="{value(moment)}"' in html


# --- holding, and what everyone else sees ---------------------------------------------


def test_the_pay_page_offers_the_coachs_free_times_before_paying(
    rows, client_of, ana, ana_contract
):
    page = offered(client_of(ana), ana_contract, "pay")
    assert 'id="first-session"' in page and "optional" in page
    assert slot_listed(page, SLOT)
    # Picking a time is a plain link back to the pay page, its confirm step in the form.
    picked = client_of(ana).get(
        f"/contracts/{ana_contract}/pay?day={SLOT.date().isoformat()}&slot={value(SLOT)}"
    ).get_data(as_text=True)
    assert f'<input type="hidden" name="slot" value="{value(SLOT)}">' in picked
    assert 'id="hold-promise"' in picked


def test_a_held_time_is_taken_for_everyone_else_until_its_session_expires(
    rows, clock, sandbox, client_of, contract_for, make_user, ana, ana_contract
):
    from payments.checkout.start import HELD_CHECKOUT_LIFETIME
    from scheduling.availability import HELD_FOR_ANOTHER

    cy = make_user("student", name="Cy Booker")
    cy_contract = contract_for(cy, active=True)
    cy_client = client_of(cy)
    assert slot_listed(offered(cy_client, cy_contract), SLOT)

    session_id = session_of(pay_with(client_of(ana), ana_contract, SLOT))
    [hold] = holds_of(rows, ana_contract)
    [payment] = payments(rows, ana_contract)
    # Stripe's shortest lifetime from the claim; the hold lives exactly as long.
    assert hold.status.value == "held" and hold.payment_id == payment.id
    assert payment.expires_at == T0 + HELD_CHECKOUT_LIFETIME
    assert hold.expires_at == payment.expires_at
    assert stripe_session(sandbox, session_id)["expires_at"] == int(hold.expires_at.timestamp())

    # Another contract of the coach: not offered, and refused when posted anyway.
    page = offered(cy_client, cy_contract)
    assert not slot_listed(page, SLOT) and not slot_listed(page, SLOT + timedelta(minutes=30))
    assert slot_listed(page, SLOT - timedelta(hours=1))
    refused = cy_client.submit(f"/contracts/{cy_contract}/schedule", {"slot": value(SLOT)})
    assert HELD_FOR_ANOTHER in refused.get_data(as_text=True)
    assert sessions_of(rows, cy_contract) == []
    # The student holding it still sees it as theirs to pay for.
    assert slot_listed(offered(client_of(ana), ana_contract, "pay"), SLOT)

    # Stripe expires the session at its expiry and says so: the time is free at once.
    advance_both(clock, sandbox, HELD_CHECKOUT_LIFETIME + timedelta(seconds=5))
    wait_for(lambda: holds_of(rows, ana_contract)[0].status.value == "released", 15,
             "the hold to be released")
    assert holds_of(rows, ana_contract)[0].ended_because == "expired"
    wait_for(lambda: payments(rows, ana_contract)[0].status.value == "expired", 15, "expired")
    assert slot_listed(offered(cy_client, cy_contract), SLOT)


def test_another_student_cannot_pay_for_a_held_time_and_nothing_is_written(
    rows, sandbox, client_of, contract_for, make_user, ana, ana_contract
):
    from scheduling.availability import HELD_FOR_ANOTHER

    session_of(pay_with(client_of(ana), ana_contract, SLOT))
    ben = make_user("student", name="Ben Late")
    ben_contract = contract_for(ben)
    ben_client = client_of(ben)
    assert not slot_listed(offered(ben_client, ben_contract, "pay"), SLOT)

    response = pay_with(ben_client, ben_contract, SLOT)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert HELD_FOR_ANOTHER in page and 'id="slot-error"' in page
    assert payments(rows, ben_contract) == [] and holds_of(rows, ben_contract) == []
    # Paying without a time still works as before.
    session_of(pay_with(ben_client, ben_contract, None))
    assert holds_of(rows, ben_contract) == []


def test_the_students_cancel_expires_the_session_and_frees_the_time(
    rows, sandbox, client_of, contract_for, make_user, ana, ana_contract
):
    cy = make_user("student")
    cy_contract = contract_for(cy, active=True)
    ana_client = client_of(ana)
    session_id = session_of(pay_with(ana_client, ana_contract, SLOT))
    assert not slot_listed(offered(client_of(cy), cy_contract), SLOT)

    page = ana_client.get(f"/contracts/{ana_contract}/payment-cancel").get_data(as_text=True)
    assert 'id="hold-released"' in page and "is free" in page
    [hold] = holds_of(rows, ana_contract)
    # Released by the cancel page, or a moment earlier by the event Stripe sent as the
    # session expired: either way before the page answered.
    assert hold.status.value == "released" and hold.ended_because in ("cancelled", "expired")
    assert stripe_session(sandbox, session_id)["status"] == "expired"
    assert slot_listed(offered(client_of(cy), cy_contract), SLOT)
    # Stripe's checkout.session.expired follows; it changes nothing more.
    wait_for(lambda: payments(rows, ana_contract)[0].status.value == "expired", 15, "expired")
    assert [h.status.value for h in holds_of(rows, ana_contract)] == ["released"]
    # Coming back to the cancel page again is harmless.
    assert ana_client.get(f"/contracts/{ana_contract}/payment-cancel").status_code == 200


def test_picking_another_time_replaces_the_hold_and_expires_the_first_session(
    rows, sandbox, client_of, ana, ana_contract
):
    ana_client = client_of(ana)
    first = session_of(pay_with(ana_client, ana_contract, SLOT))
    # The same time again: the same session, the same hold.
    assert session_of(pay_with(ana_client, ana_contract, SLOT)) == first
    assert len(holds_of(rows, ana_contract)) == 1

    earlier = SLOT - timedelta(hours=2)
    second = session_of(pay_with(ana_client, ana_contract, earlier))
    assert second != first
    old, new = holds_of(rows, ana_contract)
    assert (old.status.value, old.ended_because) == ("released", "replaced")
    assert (new.status.value, new.starts_at) == ("held", earlier)
    assert stripe_session(sandbox, first)["status"] == "expired"
    assert stripe_session(sandbox, second)["status"] == "open"

    # Paying without a time gives the held one up too.
    third = session_of(pay_with(ana_client, ana_contract, None))
    assert third not in (first, second)
    assert [h.status.value for h in holds_of(rows, ana_contract)] == ["released", "released"]
    assert stripe_session(sandbox, second)["status"] == "expired"


# --- paying -----------------------------------------------------------------------------


def test_paid_within_the_hold_books_the_session_once_whatever_the_redeliveries(
    rows, client, sandbox, client_of, coach, ana, ana_contract
):
    from audit.models import AuditEntry

    ana_client = client_of(ana)
    session_id = session_of(pay_with(ana_client, ana_contract, SLOT))
    assert sandbox.pay(session_id).status_code == 200
    wait_state(rows, ana_contract, ("active", "paid"))
    wait_for(lambda: holds_of(rows, ana_contract)[0].status.value == "booked", 15, "booked")

    [booked] = sessions_of(rows, ana_contract)
    [hold] = holds_of(rows, ana_contract)
    assert (booked.starts_at, booked.status.value, booked.booked_by_id) == (
        SLOT, "scheduled", ana.id)
    assert hold.session_id == booked.id

    # Stripe sends again: the same event twice, the same session in a new event, and the
    # student's return page fulfils it too.
    [event] = sandbox.events("checkout.session.completed")
    for _ in range(2):
        assert deliver(client, event).status_code == 200
    assert deliver(client, {**event, "id": event["id"] + "_again"}).status_code == 200
    page = ana_client.get(
        f"/contracts/{ana_contract}/payment-success?session_id={session_id}"
    ).get_data(as_text=True)
    assert 'id="first-session-booked"' in page and SLOT_FOR_ANA in page

    assert len(sessions_of(rows, ana_contract)) == 1
    assert len(rows(AuditEntry, action="session.booked")) == 1
    assert any("Ana Ruiz booked a session" in message for message in told(rows, coach))
    contract_page = ana_client.get(f"/contracts/{ana_contract}").get_data(as_text=True)
    assert SLOT_FOR_ANA in contract_page and 'id="hold-lapsed"' not in contract_page


def test_a_debit_paid_after_the_hold_ended_and_the_time_was_taken_asks_for_another_time(
    rows, clock, sandbox, client_of, contract_for, make_user, ana, ana_contract
):
    from payments.checkout.start import HELD_CHECKOUT_LIFETIME

    ana_client = client_of(ana)
    session_id = session_of(pay_with(ana_client, ana_contract, SLOT))
    assert sandbox.pay(session_id, bank_account=DEBIT_OK).status_code == 200
    wait_state(rows, ana_contract, ("pending", "processing"))

    # The debit takes days; the hold ends with its session's 30 minutes, and the time goes.
    clock.advance(HELD_CHECKOUT_LIFETIME + timedelta(minutes=1))
    cy = make_user("student", name="Cy Booker")
    cy_contract = contract_for(cy, active=True)
    cy_client = client_of(cy)
    assert slot_listed(offered(cy_client, cy_contract), SLOT)
    cy_client.submit(f"/contracts/{cy_contract}/schedule", {"slot": value(SLOT)})
    assert [s.starts_at for s in sessions_of(rows, cy_contract)] == [SLOT]

    sandbox.tool(f"checkout/sessions/{session_id}/settle", outcome="succeeded")
    wait_state(rows, ana_contract, ("active", "paid"))
    wait_for(lambda: holds_of(rows, ana_contract)[0].status.value == "lapsed", 15, "lapsed")

    # The money counts, nothing is double-booked, and the student is asked for a time.
    assert sessions_of(rows, ana_contract) == []
    assert len(sessions_of(rows, cy_contract)) == 1
    [hold] = holds_of(rows, ana_contract)
    assert hold.ended_because == "taken"
    assert any("choose another time for your first session" in message
               for message in told(rows, ana))
    page = ana_client.get(f"/contracts/{ana_contract}").get_data(as_text=True)
    assert 'id="hold-lapsed"' in page and 'id="choose-another-time"' in page


def test_a_debit_paid_after_the_hold_ended_books_the_time_when_still_free(
    rows, clock, sandbox, client_of, ana, ana_contract
):
    from payments.checkout.start import HELD_CHECKOUT_LIFETIME

    session_id = session_of(pay_with(client_of(ana), ana_contract, SLOT))
    assert sandbox.pay(session_id, bank_account=DEBIT_OK).status_code == 200
    wait_state(rows, ana_contract, ("pending", "processing"))
    clock.advance(HELD_CHECKOUT_LIFETIME + timedelta(hours=1))
    sandbox.tool(f"checkout/sessions/{session_id}/settle", outcome="succeeded")
    wait_state(rows, ana_contract, ("active", "paid"))
    wait_for(lambda: holds_of(rows, ana_contract)[0].status.value == "booked", 15, "booked")
    assert [s.starts_at for s in sessions_of(rows, ana_contract)] == [SLOT]


def test_a_deposit_that_unlocks_no_session_books_nothing_and_says_so(
    rows, sandbox, client_of, contract_for, ana
):

    # Three sessions, a 25 % deposit: less than one session's price.
    contract_id = contract_for(ana, session_count=3, price_per_session=10000,
                               plan_deposit_percent=25, plan_max_instalments=3)
    ana_client = client_of(ana)
    session_id = session_of(pay_with(ana_client, contract_id, SLOT, plan="3"))
    assert sandbox.pay(session_id).status_code == 200
    wait_state(rows, contract_id, ("active", "partially_paid"))
    wait_for(lambda: holds_of(rows, contract_id)[0].status.value == "released", 15, "released")
    assert holds_of(rows, contract_id)[0].ended_because == "nothing_unlocked"
    assert sessions_of(rows, contract_id) == []
    assert any("does not unlock a whole session yet" in message for message in told(rows, ana))


# --- two students at once ---------------------------------------------------------------


def _race(app, attempts: list[tuple[int, object, datetime]]) -> list[str]:
    """start_checkout with a time, for each (contract id, student, time), all at once;
    "held" or "refused" for each."""
    from extensions import db
    from payments import checkout

    def hold(attempt: tuple[int, object, datetime]) -> str:
        contract_id, student, when = attempt
        try:
            checkout.start_checkout(contract_id, db.session.merge(student), first_session=when)
        except checkout.SlotTaken:
            db.session.rollback()
            return "refused"
        db.session.commit()
        return "held"

    return at_once(app, hold, attempts)


@pytest.mark.postgres
def test_two_students_racing_for_one_time_one_hold(
    app, rows, sandbox, contract_for, make_user
):
    from scheduling.models import HoldStatus, SlotHold

    moment = SLOT
    for round_ in range(3):  # a few rounds: the locks, not luck, decide
        racers = [make_user("student") for _ in range(2)]
        attempts = [(contract_for(student), student, moment) for student in racers]
        outcomes = _race(app, attempts)
        assert sorted(outcomes) == ["held", "refused"], (round_, outcomes)
        held = [hold for hold in rows(SlotHold, starts_at=moment)
                if hold.status is HoldStatus.HELD]
        assert len(held) == 1
        moment += timedelta(days=1)


# --- in Chromium ------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.parametrize("viewport", [{"width": 1280, "height": 900},
                                      {"width": 390, "height": 844}], ids=["laptop", "phone"])
def test_a_student_picks_a_time_pays_with_4242_and_finds_it_booked(
    browser, live_url, sandbox, rows, ana, ana_contract, viewport
):
    size = "phone" if viewport["width"] < 600 else "laptop"
    with new_page(browser, viewport) as page:
        log_in(page, live_url, ana.email, PASSWORD)
        page.goto(f"{live_url}/contracts/{ana_contract}/pay")
        assert page.locator("#first-session").is_visible()
        page.locator(f"#day-{SLOT.date().isoformat()}").click()
        page.locator(f'[data-slot="{value(SLOT)}"]').click()
        assert "10:00 EST" in page.locator("#confirm-time").inner_text()
        assert page.locator("#hold-promise").is_visible()
        assert page_overflow(page) is None
        violations = axe_violations(page)
        assert not violations, describe_violations("pay page", violations)
        shot(page, f"holds-pay-page-{size}")
        page.locator("#pay-button").click()

        pay_by_card(page, sandbox.url, ana.email, ana.name)
        page.wait_for_url(f"{live_url}/contracts/*/payment-success*")
        assert page.locator("#payment-result").inner_text() == "Payment received"
        assert SLOT_FOR_ANA in page.locator("#first-session-booked").inner_text()
        shot(page, f"holds-payment-success-{size}")
        page.get_by_role("link", name="Go to the contract").click()
        assert page.locator(".cp-status").first.get_attribute("data-status") == "active"
        assert "10:00 EST" in page.locator("#sessions-upcoming").inner_text()
        shot(page, f"holds-contract-booked-{size}")
    [booked] = sessions_of(rows, ana_contract)
    assert booked.starts_at == SLOT
