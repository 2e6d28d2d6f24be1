"""The refund policy is fixed at purchase: quotes read the contract's copy, never the settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from markupsafe import escape

from config import ConfigError, load_config
from contracts.models import Contract
from contracts.refund_policy import RefundQuote, quote, terms_in_words
from tests.conftest import login

PAID_AT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
CLOSES_AT = PAID_AT + timedelta(days=14)
SECOND = timedelta(seconds=1)


@pytest.fixture
def coach(make_user):
    return make_user("coach", name="Maya Coach")


@pytest.fixture
def student(make_user):
    return make_user("student", name="Ana Student")


@pytest.fixture
def accept(app, db, coach, student, make_proposal):
    """Accept a new proposal (terms as given) under the app's settings; returns the contract."""
    from contracts.services import accept_proposal

    def make(**terms) -> Contract:
        contract = accept_proposal(
            make_proposal(coach, student, **terms), db.session.merge(student)
        )
        db.session.commit()
        return contract

    return make


@pytest.fixture
def pay(app, db):
    """Mark a contract paid at `paid_at`, as fulfilment does."""
    from contracts import lifecycle

    def paid(contract: Contract, paid_at: datetime = PAID_AT) -> Contract:
        with app.test_request_context():
            lifecycle.mark_paid(contract, paid_at=paid_at, actor_label="test", details={})
            db.session.commit()
        return contract

    return paid


@pytest.fixture
def paid(accept, pay) -> Contract:
    """4 sessions at $50.00, paid at PAID_AT under the default 14-day window."""
    return pay(accept(session_count=4, price_per_session=5000))


def test_accepting_stores_the_policy_in_force(app, accept):
    assert app.config["REFUND_FULL_WINDOW_DAYS"] == 14
    assert accept().refund_full_window_days == 14


def test_a_settings_change_reaches_new_contracts_only(app, db, accept, pay):
    old = pay(accept())
    app.config["REFUND_FULL_WINDOW_DAYS"] = 3
    new = pay(accept())
    db.session.expire_all()
    assert (old.refund_full_window_days, new.refund_full_window_days) == (14, 3)

    ten_days_in = PAID_AT + timedelta(days=10)
    assert quote(old, used_sessions=0, now=ten_days_in).full
    assert not quote(new, used_sessions=0, now=ten_days_in).full
    # Changing it back later does not reach the newer contract either.
    app.config["REFUND_FULL_WINDOW_DAYS"] = 14
    db.session.expire_all()
    assert not quote(new, used_sessions=0, now=ten_days_in).full


@pytest.mark.parametrize("app_overrides", [{"REFUND_FULL_WINDOW_DAYS": 30}])
def test_the_window_comes_from_the_environment(app, accept, pay, app_overrides):
    contract = pay(accept())
    assert contract.refund_full_window_days == 30
    assert quote(contract, used_sessions=0, now=PAID_AT + timedelta(days=29)).full


def test_inside_the_window_with_no_session_used_the_full_total_comes_back(paid):
    result = quote(paid, used_sessions=0, now=CLOSES_AT - SECOND)
    assert result == RefundQuote(
        amount=20000,
        full=True,
        sessions_released=4,
        explanation="No session has been used and it is less than 14 days since payment, "
        "so the full total of $200.00 comes back.",
    )


@pytest.mark.parametrize("now", [CLOSES_AT, CLOSES_AT + SECOND])
def test_the_window_closes_exactly_n_days_after_payment(paid, now):
    # Open strictly before paid_at + 14 days: at that instant it has closed. With no
    # session used, the price of each unused session is still the whole total.
    result = quote(paid, used_sessions=0, now=now)
    assert (result.amount, result.full, result.sessions_released) == (20000, False, 4)
    assert result.explanation.startswith("The full refund ended 14 days after payment;")


def test_the_first_used_session_closes_the_window_early(paid):
    result = quote(paid, used_sessions=1, now=PAID_AT + timedelta(days=1))
    assert result == RefundQuote(
        amount=15000,
        full=False,
        sessions_released=3,
        explanation="1 of the 4 sessions has been used, so the full refund no longer "
        "applies; the 3 sessions not used come back at $50.00 each: $150.00.",
    )


def test_every_session_used_leaves_nothing(paid):
    result = quote(paid, used_sessions=4, now=PAID_AT + timedelta(days=1))
    assert (result.amount, result.full, result.sessions_released) == (0, False, 0)
    assert "nothing is left to refund" in result.explanation


def test_an_unpaid_contract_quotes_nothing(accept):
    contract = accept()
    result = quote(contract, used_sessions=0, now=contract.created_at)
    assert (result.amount, result.full, result.sessions_released) == (0, False, 0)
    assert result.explanation.startswith("Nothing has been paid")


def test_yen_amounts_stay_whole_yen(accept, pay):
    contract = pay(accept(currency="jpy", price_per_session=3333, session_count=3))
    full = quote(contract, used_sessions=0, now=PAID_AT)
    later = quote(contract, used_sessions=1, now=PAID_AT)
    assert (full.amount, later.amount) == (9999, 6666)
    assert isinstance(later.amount, int)
    assert "¥3,333 each: ¥6,666." in later.explanation


@pytest.mark.parametrize(
    ("used", "already_refunded", "amount"),
    [
        (0, 5000, 15000),  # the full total, less what went back already
        (1, 5000, 15000),  # 3 unused ($150.00) fit in the $150.00 left
        (1, 12000, 8000),  # 3 unused ($150.00), but only $80.00 is left
        (0, 20000, 0),
        (0, 25000, 0),  # never negative, whatever was recorded
    ],
)
def test_a_quote_never_exceeds_what_was_paid_and_not_refunded(paid, used, already_refunded, amount):
    result = quote(paid, used_sessions=used, now=PAID_AT, already_refunded=already_refunded)
    assert result.amount == amount
    assert result.amount <= paid.total_amount - min(already_refunded, paid.total_amount)
    if 0 < amount < paid.price_per_session * (paid.session_count - used):
        assert "was refunded already" in result.explanation


def test_a_zero_day_window_has_no_full_refund(app, accept, pay):
    app.config["REFUND_FULL_WINDOW_DAYS"] = 0
    contract = pay(accept())
    result = quote(contract, used_sessions=0, now=PAID_AT)
    assert not result.full and result.amount == contract.total_amount
    assert terms_in_words(contract, 0) == (
        "A refund gives back the price of each session you have not used ($50.00 each)."
    )


def test_nonsense_counts_are_refused(paid):
    with pytest.raises(ValueError):
        quote(paid, used_sessions=-1, now=PAID_AT)
    with pytest.raises(ValueError):
        quote(paid, used_sessions=0, now=PAID_AT, already_refunded=-1)


def test_terms_in_words(accept):
    contract = accept(currency="eur", price_per_session=5500)
    assert terms_in_words(contract, 14) == (
        "Full refund until your first session or 14 days after payment, whichever comes "
        "first; after that, the price of each session you have not used (€55.00 each)."
    )
    assert "or 1 day after payment" in terms_in_words(contract, 1)


@pytest.mark.parametrize(
    ("raw", "problem"), [("two", "whole number of days"), ("1.5", "whole number"), ("-1", "neg")]
)
def test_the_setting_must_be_whole_days(tmp_path, raw, problem):
    with pytest.raises(ConfigError, match=problem):
        load_config(str(tmp_path), {"REFUND_FULL_WINDOW_DAYS": raw})


def test_the_proposal_page_shows_the_terms_in_force_now(app, client, coach, student, make_proposal):
    proposal_id = make_proposal(coach, student)
    app.config["REFUND_FULL_WINDOW_DAYS"] = 7
    login(client, student)
    page = client.get(f"/contracts/proposals/{proposal_id}").get_data(as_text=True)
    assert "If you accept now:" in page
    assert str(escape(terms_in_words_for(5000, "usd", 7))) in page


def test_the_coach_sees_what_the_student_would_get(client, coach, student, make_proposal):
    login(client, coach)
    page = client.get(f"/contracts/proposals/{make_proposal(coach, student)}").get_data(
        as_text=True
    )
    assert "If Ana Student accepts now:" in page and "or 14 days after payment" in page


def test_the_contract_page_shows_its_own_terms_after_a_settings_change(app, client, student, paid):
    app.config["REFUND_FULL_WINDOW_DAYS"] = 3
    login(client, student)
    page = client.get(f"/contracts/{paid.id}").get_data(as_text=True)
    assert "Fixed when this contract was accepted:" in page
    assert str(escape(terms_in_words_for(5000, "usd", 14))) in page
    assert "or 3 days after payment" not in page


def terms_in_words_for(price_per_session: int, currency: str, window_days: int) -> str:
    terms = SimpleNamespace(price_per_session=price_per_session, currency=currency)
    return terms_in_words(terms, window_days)


def test_a_plan_paid_in_part_says_in_one_sentence_what_comes_back(paid):
    # Inside the window, a quarter paid: everything paid comes back, and nothing says
    # the full total does.
    result = quote(paid, used_sessions=0, now=CLOSES_AT - SECOND, paid=5000)
    assert result.amount == 5000 and result.full
    assert result.explanation == (
        "No session has been used and it is less than 14 days since payment, so everything "
        "paid comes back: $50.00 ($50.00 of the $200.00 total has been paid so far)."
    )
    assert "full total of" not in result.explanation
    assert "can come back" not in result.explanation

    # Past the window, with a refund made already: the sessions' worth, capped by what
    # was paid less what came back before.
    later = quote(paid, used_sessions=1, now=CLOSES_AT, paid=10000, already_refunded=2000)
    assert later.amount == 8000
    assert later.explanation == (
        "1 of the 4 sessions has been used, so the full refund no longer applies; the 3 "
        "sessions not used come back at $50.00 each: $150.00; but only $100.00 of the "
        "$200.00 total has been paid so far, less $20.00 refunded already, so $80.00 "
        "comes back."
    )
