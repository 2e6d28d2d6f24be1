"""Admin: coach payouts. The shares by status and their filters, coaches whose account is not
ready with what waits for them, platform fees and losses per currency, and the dashboard's
ledger tile.

Rows are written as the payout jobs leave them. With a 10 % fee, a contract of 4 sessions of
50.00 has a 20.00 fee and 180.00 for its coach: four shares of 45.00.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html import unescape

import pytest
from sqlalchemy import func, select

from tests.admin.test_plans_admin import text_of
from tests.conftest import login

NOON = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def app_overrides():
    return {"PLATFORM_FEE_PERCENT": Decimal("10"), "PLATFORM_FEE_MINIMUM": Decimal("1")}


@pytest.fixture
def paid_contract(db, make_user, make_proposal, clock):
    """paid_contract(coach, currency=..., paid=True) → a contract paid in full, 4 sessions."""
    from contracts.models import ContractStatus, PaymentStatus
    from contracts.services import accept_proposal
    from payments.models import Payment, PaymentRecordStatus

    counter = iter(range(1, 1000))

    def make(coach, *, currency: str = "usd", paid: bool = True):
        n = next(counter)
        student = make_user("student")
        contract = accept_proposal(
            make_proposal(coach, student, title=f"Coaching {n}", currency=currency,
                          price_per_session=5000, session_count=4),
            db.session.merge(student),
        )
        if paid:
            contract.status, contract.payment_status = ContractStatus.ACTIVE, PaymentStatus.PAID
            contract.paid_at, contract.amount_paid = clock.now(), contract.total_amount
            db.session.add(Payment(
                contract_id=contract.id, amount=contract.total_amount, currency=currency,
                status=PaymentRecordStatus.SUCCEEDED, checkout_session_id=f"cs_test_po_{n}",
                payment_intent_id=f"pi_po_{n}", charge_id=f"ch_po_{n}",
                payment_method_type="card", paid_at=clock.now(),
            ))
        db.session.commit()
        return contract

    return make


@pytest.fixture
def share(db, clock):
    """share(contract, status, **fields) → a share for a new completed session of it."""
    from contracts.models import CoachingSession, SessionStatus
    from payouts.models import SessionShare, ShareStatus
    from payouts.shares import share_amount

    numbers: dict[int, int] = {}

    def make(contract, status: str = "held", **fields):
        number = numbers[contract.id] = numbers.get(contract.id, 0) + 1
        starts = clock.now() - timedelta(days=10 - number)
        session = CoachingSession(
            contract_id=contract.id, coach_id=contract.coach_id,
            booked_by_id=contract.student_id, starts_at=starts,
            ends_at=starts + timedelta(hours=1), status=SessionStatus.COMPLETED,
            marked_at=starts + timedelta(hours=1),
        )
        db.session.add(session)
        db.session.flush()
        row = SessionShare(
            session_id=session.id, contract_id=contract.id, coach_id=contract.coach_id,
            number=number, amount=share_amount(contract, number), currency=contract.currency,
            status=ShareStatus(status), due_at=starts + timedelta(days=3),
            **{"next_attempt_at": starts + timedelta(days=3), **fields},
        )
        db.session.add(row)
        db.session.commit()
        return row

    return make


def account(db, coach, *, ready: bool = True, requirements: list[str] | None = None):
    from payouts.models import ConnectedAccount

    row = ConnectedAccount(
        user_id=coach.id, stripe_account_id=f"acct_test_{coach.id}", charges_enabled=ready,
        payouts_enabled=ready, details_submitted=ready, transfers_active=ready,
        requirements_due=requirements or [],
    )
    db.session.add(row)
    db.session.commit()
    return row


def rows(html: str, table: str) -> dict[str, str]:
    """The table's rows by id, each as its text."""
    body = re.search(rf'<table[^>]*id="{table}".*?</table>', html, re.S)
    if body is None:
        return {}
    return {
        row_id: " ".join(unescape(re.sub(r"<[^>]+>", " ", content)).split())
        for row_id, content in re.findall(r'<tr id="([^"]+)"[^>]*>(.*?)</tr>', body.group(0), re.S)
    }


def page(client, url: str = "/admin/payouts") -> str:
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


# --- who may see it ---------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["anonymous", "student", "coach"])
def test_the_payouts_page_is_a_404_to_anyone_but_an_admin(client, make_user, who):
    if who != "anonymous":
        login(client, make_user(who))
    assert client.get("/admin/payouts").status_code == 404
    assert client.get("/admin/payouts?status=failed").status_code == 404


def test_the_console_links_to_it(admin_client):
    html = page(admin_client, "/admin/plans")
    assert 'href="/admin/payouts"' in html


# --- the shares -----------------------------------------------------------------------------


def test_the_shares_by_status_newest_first_and_filtered(
    db, admin_client, make_user, paid_contract, share, clock
):
    clock.freeze(NOON)
    coach = make_user("coach", name="Maya Coach")
    account(db, coach)
    contract = paid_contract(coach)
    held = share(contract, "held")
    sent = share(contract, "transferred", transfer_amount=4500, stripe_transfer_id="tr_test_1",
                 transferred_at=NOON - timedelta(days=1), attempts=1)
    failed = share(contract, "failed", attempts=3, refusals=3,
                   last_error="Insufficient funds in Stripe account (balance_insufficient)",
                   next_attempt_at=NOON + timedelta(minutes=4))
    due = share(contract, "due")

    html = page(admin_client)
    shown = rows(html, "share-rows")
    assert list(shown) == [f"share-{s.id}" for s in (due, failed, sent, held)]
    assert text_of(html, "count-all") == "4"
    assert text_of(html, "count-failed") == "1" and text_of(html, "count-cancelled") == "0"
    assert "Held" in shown[f"share-{held.id}"] and "Due" in shown[f"share-{held.id}"]
    assert "$45.00" in shown[f"share-{held.id}"]
    assert "tr_test_1" in shown[f"share-{sent.id}"]
    assert "3 attempts" in shown[f"share-{failed.id}"]
    assert "balance_insufficient" in shown[f"share-{failed.id}"]
    assert "next" in shown[f"share-{failed.id}"]

    only_failed = rows(page(admin_client, "/admin/payouts?status=failed"), "share-rows")
    assert list(only_failed) == [f"share-{failed.id}"]
    only_sent = rows(page(admin_client, "/admin/payouts?status=transferred"), "share-rows")
    assert list(only_sent) == [f"share-{sent.id}"]
    assert "No share is cancelled" in page(admin_client, "/admin/payouts?status=cancelled")
    # A status that does not exist shows every share.
    assert len(rows(page(admin_client, "/admin/payouts?status=bogus"), "share-rows")) == 4
    # "Retry now" makes a failed transfer due at once, audited; only a failed one.
    assert f"Retry the transfer of session {failed.number} now" in html
    response = admin_client.submit("/admin/payouts/retry", {"share_id": str(failed.id)})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(type(failed), failed.id).next_attempt_at == NOON
    refused = admin_client.submit("/admin/payouts/retry", {"share_id": str(sent.id)},
                                  follow_redirects=True)
    assert "Nothing to retry" in refused.get_data(as_text=True)


def test_the_shares_page_by_keyset(db, admin_client, make_user, paid_contract, share, clock,
                                   monkeypatch):
    import admin.listing

    clock.freeze(NOON)
    monkeypatch.setattr(admin.listing, "PAGE_SIZE", 2)
    monkeypatch.setattr(admin.listing.keyset_page, "__defaults__", (2,))
    coach = make_user("coach")
    contract = paid_contract(coach)
    made = [share(contract, "due") for _ in range(3)]
    html = page(admin_client)
    assert list(rows(html, "share-rows")) == [f"share-{made[2].id}", f"share-{made[1].id}"]
    assert f"after={made[1].id}" in html
    rest = page(admin_client, f"/admin/payouts?after={made[1].id}")
    assert list(rows(rest, "share-rows")) == [f"share-{made[0].id}"]


# --- accounts not ready ---------------------------------------------------------------------


@pytest.mark.ledger_dirty  # shares and losses written by hand, not by payouts
def test_coaches_whose_account_is_not_ready_with_what_waits_for_them(
    db, admin_client, make_user, paid_contract, share, clock
):
    clock.freeze(NOON)
    ready = make_user("coach", name="Ready Coach")
    account(db, ready)
    share(paid_contract(ready), "due")
    tomas = make_user("coach", name="Tomás Ferreira")  # never set up payouts
    usd, eur = paid_contract(tomas), paid_contract(tomas, currency="eur")
    share(usd, "due"), share(usd, "held"), share(usd, "transferred", transfer_amount=4500,
                                                 stripe_transfer_id="tr_t")
    share(eur, "failed", attempts=1), share(eur, "cancelled")
    owing = make_user("coach", name="Owing Coach")
    account(db, owing, requirements=["external_account"])
    half = make_user("coach", name="Half Onboarded")
    account(db, half, ready=False)
    share(paid_contract(half), "due")

    html = page(admin_client)
    shown = rows(html, "not-ready-rows")
    assert f"waiting-{ready.id}" not in shown
    tomas_row = shown[f"waiting-{tomas.id}"]
    assert "No connected account" in tomas_row
    assert "$90.00" in tomas_row and "€45.00" in tomas_row  # due + held; failed (cancelled not)
    assert " 3 " in f" {tomas_row} "
    assert "Requirements due" in shown[f"waiting-{owing.id}"]
    assert "external_account" in shown[f"waiting-{owing.id}"]
    assert "Payouts not enabled" in shown[f"waiting-{half.id}"]
    assert "$45.00" in shown[f"waiting-{half.id}"]


def test_what_waits_is_net_of_refunds(db, admin_client, make_user, paid_contract, share, clock):
    from payments.models import Payment, Refund, RefundSource, RefundStatus

    clock.freeze(NOON)
    coach = make_user("coach", name="Refunded Coach")
    contract = paid_contract(coach)
    share(contract, "due")
    payment = db.session.query(Payment).filter_by(contract_id=contract.id).one()
    db.session.add(Refund(payment_id=payment.id, contract_id=contract.id, amount=5000,
                          currency="usd", status=RefundStatus.SUCCEEDED,
                          source=RefundSource.ADMIN, stripe_refund_id="re_po_1"))
    db.session.commit()
    # 45.00 − 45.00 × 50 ÷ 200 = 33.75
    assert "$33.75" in rows(page(admin_client), "not-ready-rows")[f"waiting-{coach.id}"]


# --- the platform's money -------------------------------------------------------------------


@pytest.mark.ledger_dirty  # shares and losses written by hand, not by payouts
def test_platform_fees_and_losses_per_currency(
    db, admin_client, make_user, paid_contract, share, clock
):
    from payouts.models import PlatformLoss

    clock.freeze(NOON)
    coach = make_user("coach")
    usd = paid_contract(coach)
    paid_contract(coach)
    eur = paid_contract(coach, currency="eur")
    paid_contract(coach, currency="gbp", paid=False)  # not paid: no fee yet
    html = page(admin_client)
    assert text_of(html, "fees-usd") == "$40.00"
    assert text_of(html, "fees-eur") == "€20.00"
    assert 'id="fees-gbp"' not in html
    assert 'id="no-losses"' in html

    for contract, amount in ((usd, 1200), (usd, 300), (eur, 700)):
        sent = share(contract, "transferred", transfer_amount=4500,
                     stripe_transfer_id=f"tr_l_{contract.id}_{amount}", lost_amount=amount)
        db.session.add(PlatformLoss(share_id=sent.id, contract_id=contract.id, amount=amount,
                                    currency=contract.currency,
                                    reason="Insufficient funds (balance_insufficient)"))
    db.session.commit()
    html = page(admin_client)
    assert text_of(html, "losses-usd") == "$15.00"
    assert text_of(html, "losses-eur") == "€7.00"
    assert len(re.findall(r'id="loss-\d+"', html)) == 3


def test_a_reversal_waiting_for_the_coach_balance_is_shown_as_waiting_not_lost(
    db, admin_client, make_user, paid_contract, share, clock
):
    clock.freeze(NOON)
    coach = make_user("coach", name="Wanda Waiting")
    contract = paid_contract(coach)
    html = page(admin_client)
    assert 'id="waiting-reversals"' not in html
    waiting = share(contract, "transferred", transfer_amount=4500, stripe_transfer_id="tr_w_1",
                    reversal_refusals=2, reversal_waiting_since=NOON - timedelta(hours=1),
                    reversal_next_attempt_at=NOON + timedelta(minutes=30),
                    reversal_error="Insufficient funds in the destination account "
                                   "(balance_insufficient)")
    db.session.commit()
    html = page(admin_client)
    row = unescape(re.sub(r"\s+", " ", re.search(
        rf'id="waiting-reversal-{waiting.id}">(.*?)</li>', html, re.S).group(1)))
    assert "Wanda Waiting" in row and "2 refusals" in row and "balance_insufficient" in row
    assert 'id="no-losses"' in html


# --- the dashboard's tile -------------------------------------------------------------------


@pytest.mark.ledger_dirty
def test_the_dashboard_tile_shows_the_ledger_checks_last_run(
    db, admin_client, make_user, paid_contract, share, clock
):
    from payouts.ledger import periodic_ledger_check

    clock.freeze(NOON)
    coach = make_user("coach")
    contract = paid_contract(coach)
    wrong = share(contract, "due")
    # No page runs the check: before its first run the tile says so.
    html = page(admin_client, "/admin/payments")
    assert text_of(html, "ledger-discrepancies") == "—"
    assert "Not checked yet" in text_of(html, "ledger-checked")
    assert 'id="ledger-none"' in page(admin_client)

    periodic_ledger_check()
    html = page(admin_client, "/admin/payments")
    assert text_of(html, "ledger-discrepancies") == "0"
    assert 'id="tile-payouts"' in html
    assert 'id="ledger-ok"' in page(admin_client)

    wrong.amount = 4000  # not its split: the check says so
    db.session.commit()
    # The pages show the last run until the next...
    assert text_of(page(admin_client, "/admin/payments"), "ledger-discrepancies") == "0"
    clock.advance(timedelta(minutes=15))
    periodic_ledger_check()
    # ...which finds two lines: the share is not its split, so the contract is off by 5.00.
    html = page(admin_client, "/admin/payments")
    assert text_of(html, "ledger-discrepancies") == "2"
    assert "cp-tile-alert" in re.search(r'<a[^>]*id="tile-payouts"', html).group(0)
    lines = page(admin_client)
    assert f"share {wrong.id}" in lines and "its split is 4500" in lines
    assert "off by 500" in lines


@pytest.mark.ledger_dirty
def test_check_now_runs_the_ledger_check_and_old_runs_go(
    db, admin_client, make_user, paid_contract, share, clock
):
    from payouts.ledger import KEEP_RUNS
    from payouts.models import LedgerCheckRun

    clock.freeze(NOON)
    wrong = share(paid_contract(make_user("coach")), "due")
    wrong.amount = 4000
    db.session.commit()
    assert admin_client.submit("/admin/payouts/ledger-check").status_code == 302
    assert "2 discrepanc" not in page(admin_client)  # the lines themselves are listed
    assert f"share {wrong.id}" in page(admin_client)
    assert admin_client.post("/admin/payouts/ledger-check").status_code == 400  # no token
    clock.advance(KEEP_RUNS + timedelta(days=1))
    assert admin_client.submit("/admin/payouts/ledger-check").status_code == 302
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(LedgerCheckRun)) == 1
