"""Reconciliation with Stripe's books, at the sandbox: a day of mixed activity (a charge,
its Stripe fee, a transfer to the coach, a refund and the reversal it causes, a dispute)
is clean; each record taken away from our side in turn, and an amount changed, is
reported; the fee is read and shown; the admin page and the command say the same."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from tests.payments.conftest import *  # noqa: F403 (the sandbox, a paid contract, an admin)
from tests.payments.conftest import start_checkout, stripe_settings, wait_until_state
from tests.payouts.conftest import deliver_sessions, onboard_coach, run_payouts
from tests.support import wait_for

# Test card 4000 0000 0000 0077: the charge's money is available at once, so the coach's
# share can be transferred (and reversed) the same day.
CARD_AVAILABLE_AT_ONCE = "4000000000000077"


@pytest.fixture
def app_overrides(sandbox_server):
    # A delivered session's share is due at once.
    return {**stripe_settings(sandbox_server[1]), "PAYOUT_HOLD_DAYS": 0}


@pytest.fixture
def day(sandbox, clock) -> date:
    """A day ahead, 01:00 UTC on both clocks: the app's frozen there, the sandbox's moved."""
    ahead = date.today() + timedelta(days=2)
    ahead += timedelta(days=(2 - ahead.weekday()) % 7)  # a Wednesday: the coach works
    start = datetime.combine(ahead, datetime.min.time(), UTC)
    start += timedelta(hours=1)
    clock.freeze(start)
    response = sandbox.tool("clock", offset_seconds=str(int(start.timestamp() - time.time())))
    assert response.status_code == 200, response.text
    return start.date()


@pytest.fixture
def active_day(app, db, day, sandbox, student_client, pending_contract, admin, clock):
    """On `day`: the contract paid by card, a session delivered and its share transferred to
    the coach's account, then $50.00 refunded (which reverses a quarter of the share)."""
    from payments import refunds
    from payments.models import RefundStatus
    from payouts.models import ShareStatus
    from payouts.shares import shares_of_contract

    contract_id, _, coach = pending_contract
    session_id = start_checkout(student_client, contract_id)
    assert sandbox.pay(session_id, card_number=CARD_AVAILABLE_AT_ONCE).status_code == 200
    student_client.get(f"/contracts/{contract_id}/payment-success?session_id={session_id}")
    wait_until_state(db, contract_id, ("active", "paid"))

    onboard_coach(db, sandbox, coach)

    with app.test_request_context():  # services link to pages in what they tell people
        deliver_sessions(db, clock, contract_id, coach, clock.now() + timedelta(hours=13))
        run_payouts(db)
        assert [s.status for s in shares_of_contract(contract_id)] == [ShareStatus.TRANSFERRED]

        refund = refunds.refund_contract(contract_id, db.session.merge(admin), amount=5000,
                                         note="a session not needed")
        db.session.commit()
        assert refunds.send_refund(refund.id).status is RefundStatus.SUCCEEDED
        run_payouts(db)  # the reversal
    db.session.expire_all()
    [share] = shares_of_contract(contract_id)
    assert share.reversed_amount > 0
    return contract_id


def _categories(check) -> dict[str, int]:
    return {category: sum(f["count"] for f in by_currency.values())
            for category, by_currency in check.totals.items()}


def test_a_day_of_mixed_activity_is_clean_and_reads_the_fee(db, active_day, day):
    from books.reconcile import reconcile_day
    from payments.models import Payment

    run = reconcile_day(day)
    assert run.error is None
    assert [item.note for item in run.items] == []
    assert _categories(run) == {"charge": 1, "refund": 1, "transfer": 1,
                                "transfer_reversal": 1}
    assert run.matched == run.transactions == 4
    payment = db.session.scalar(select(Payment).filter_by(contract_id=active_day))
    # Stripe's fee, read from the charge's balance transaction: 2.9 % + 30 of $200.00.
    assert payment.stripe_fee == 610
    assert payment.balance_transaction_id.startswith("txn_")
    assert run.totals["charge"]["usd"] == {"count": 1, "amount": 20000, "fee": 610,
                                           "net": 19390}


def _differences(db, day, change) -> list[tuple[str, str]]:
    """What a check of `day` reports with `change` made to our records (then undone)."""
    from books.reconcile import check_day

    change()
    db.session.flush()
    try:
        found = check_day(day)
    finally:
        db.session.rollback()
    return sorted((item.kind.value, item.category) for item in found.items)


def test_each_record_missing_on_our_side_is_reported(db, active_day, day):
    from payments.models import Payment, Refund
    from payouts.models import SessionShare, TransferReversal

    payment = db.session.scalar(select(Payment).filter_by(contract_id=active_day))
    refund = db.session.scalar(select(Refund).filter_by(contract_id=active_day))
    share = db.session.scalar(select(SessionShare).filter_by(contract_id=active_day))
    reversal = db.session.scalar(select(TransferReversal).filter_by(share_id=share.id))

    def charge_gone() -> None:  # as if we had never recorded this charge
        payment.charge_id, payment.payment_intent_id = "ch_elsewhere", "pi_elsewhere"

    def refund_gone() -> None:
        refund.stripe_refund_id = "re_elsewhere"

    def transfer_gone() -> None:
        share.stripe_transfer_id = "tr_elsewhere"

    def reversal_gone() -> None:
        reversal.stripe_reversal_id = "trr_elsewhere"

    assert _differences(db, day, charge_gone) == [("missing_ours", "charge"),
                                                   ("missing_stripe", "charge")]
    assert _differences(db, day, refund_gone) == [("missing_ours", "refund"),
                                                   ("missing_stripe", "refund")]
    assert _differences(db, day, transfer_gone) == [("missing_ours", "transfer"),
                                                     ("missing_stripe", "transfer")]
    assert _differences(db, day, reversal_gone) == [("missing_ours", "transfer_reversal"),
                                                     ("missing_stripe", "transfer_reversal")]


def test_an_amount_or_a_fee_that_differs_is_reported(db, active_day, day):
    from books.reconcile import reconcile_day
    from payments.models import Payment, Refund

    reconcile_day(day)  # reads the fee
    refund = db.session.scalar(select(Refund).filter_by(contract_id=active_day))
    payment = db.session.scalar(select(Payment).filter_by(contract_id=active_day))

    def refund_larger() -> None:
        refund.amount += 100

    def fee_differs() -> None:
        payment.stripe_fee = 600

    assert _differences(db, day, refund_larger) == [("amount", "refund")]
    assert _differences(db, day, fee_differs) == [("amount", "charge")]


def test_a_dispute_is_matched_and_one_we_lack_is_reported(db, active_day, day, sandbox):
    from books.reconcile import reconcile_day
    from payments.models import Dispute, Payment

    charge = db.session.scalar(select(Payment.charge_id).filter_by(contract_id=active_day))
    response = sandbox.tool(f"charges/{charge}/dispute", reason="fraudulent")
    assert response.status_code == 200, response.text

    def recorded() -> bool:
        db.session.expire_all()
        return db.session.scalar(select(Dispute.id)) is not None

    wait_for(recorded, 10, "the dispute to be recorded")
    run = reconcile_day(day)
    assert [item.note for item in run.items] == []
    assert _categories(run)["dispute"] == 1

    def dispute_gone() -> None:
        dispute = db.session.scalar(select(Dispute))
        dispute.stripe_dispute_id = "du_elsewhere"

    assert _differences(db, day, dispute_gone) == [("missing_ours", "dispute"),
                                                    ("missing_stripe", "dispute")]


def test_the_fee_sweep_reads_fees_of_paid_payments(db, active_day, clock):
    from books.fees import READ_AFTER, read_fees
    from payments.models import Payment

    assert db.session.scalar(select(Payment.stripe_fee).filter_by(contract_id=active_day)) is None
    paid_at = db.session.scalar(select(Payment.paid_at).filter_by(contract_id=active_day))
    clock.freeze(paid_at + READ_AFTER - timedelta(seconds=1))
    assert read_fees() == 0  # not yet: Stripe may still be attaching it
    clock.freeze(paid_at + READ_AFTER)
    assert read_fees() == 1
    db.session.expire_all()
    assert db.session.scalar(select(Payment.stripe_fee).filter_by(contract_id=active_day)) == 610
    assert read_fees() == 0  # read once


def test_the_fee_sweep_asks_once_about_a_payment_stripe_does_not_know(db, active_day, clock):
    from books.fees import fee_unknown_ids, read_fees
    from payments.models import Payment

    payment = db.session.scalar(select(Payment).filter_by(contract_id=active_day))
    payment.payment_intent_id = "pi_from_another_account"
    db.session.commit()
    assert fee_unknown_ids() == [payment.id]
    assert read_fees() == 0
    db.session.expire_all()
    assert payment.stripe_fee is None and payment.fee_refused_at == clock.now()
    assert fee_unknown_ids() == []  # not asked again


def test_the_dashboard_and_the_payment_page_show_stripe_fees_and_net(
    db, active_day, day, student_client, admin
):
    from books.reconcile import reconcile_day
    from payments.models import Payment
    from tests.admin.test_dashboard import text_of
    from tests.conftest import login

    reconcile_day(day)  # reads the fee
    client = student_client
    client.submit("/auth/logout")
    login(client, admin)
    html = client.get(f"/admin/payments?range=custom&start={day}&end={day}").get_data(
        as_text=True)
    shown = [text_of(html, f"{figure}-usd") for figure in
             ("gross", "refunded", "stripe-fees", "net", "fees")]
    # $200.00 in, $50.00 back, Stripe kept $6.10: $143.90 left; the platform's 5 % fee.
    assert shown == ["$200.00", "$50.00", "$6.10", "$143.90", "$10.00"]
    payment_id = db.session.scalar(select(Payment.id).filter_by(contract_id=active_day))
    html = client.get(f"/admin/payments/{payment_id}").get_data(as_text=True)
    assert [text_of(html, name) for name in ("stripe-fee", "payment-platform-fee")] == [
        "$6.10", "$10.00"]
    assert text_of(html, "payment-net").startswith("$143.90")


def test_the_admin_checks_a_day_and_sees_it(db, active_day, day, student_client, admin,
                                            runner):
    from tests.conftest import login

    client = student_client
    client.submit("/auth/logout")
    login(client, admin)
    page = client.get("/admin/books").get_data(as_text=True)
    assert "No day has been checked yet" in page
    future = client.submit("/admin/books/check", {"day": (day + timedelta(days=30)).isoformat()})
    assert future.status_code == 400
    assert "That day has not happened yet." in future.get_data(as_text=True)
    checked = client.submit("/admin/books/check", {"day": day.isoformat()},
                            follow_redirects=True)
    text = checked.get_data(as_text=True)
    assert checked.status_code == 200
    assert "every balance transaction matches our records" in text
    assert 'id="run-result">Clean' in text
    listing = client.get("/admin/books").get_data(as_text=True)
    assert f'id="run-{day.isoformat()}" data-clean="yes"' in listing
    result = runner.invoke(args=["payments", "reconcile-balance", "--day", day.isoformat()])
    assert result.exit_code == 0, result.output
    assert "4 balance transactions, 4 matched, 0 difference(s)" in result.output


@pytest.mark.browser
def test_in_chromium_the_admin_checks_the_day_then_finds_a_missing_refund(
    db, active_day, day, admin, live_url, page
):
    from payments.models import Refund
    from tests.conftest import PASSWORD
    from tests.support import shot

    page.goto(f"{live_url}/auth/login")
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_url}/admin/**")
    page.locator("#admin-nav summary").click()  # the books wait under "More"
    page.locator("#admin-nav").get_by_role("link", name="Stripe books").click()
    page.get_by_label("Day (UTC)").fill(day.isoformat())
    page.get_by_role("button", name="Check this day with Stripe").click()
    page.wait_for_url(f"{live_url}/admin/books/{day.isoformat()}")
    assert page.locator("#run-result").inner_text() == "Clean"
    totals = page.locator("#day-totals").inner_text()
    assert "Charges" in totals and "Transfer reversals" in totals and "$6.10" in totals
    shot(page, "admin-books-clean")

    # A refund whose record went astray on our side: the next check names it.
    refund = db.session.scalar(select(Refund).filter_by(contract_id=active_day))
    refund.stripe_refund_id = "re_elsewhere"
    db.session.commit()
    page.get_by_role("button", name="Check this day with Stripe").click()
    page.wait_for_url(f"{live_url}/admin/books/{day.isoformat()}")
    assert page.locator("#run-result").inner_text() == "2 differences"
    rows = page.locator("#differences tbody tr")
    assert rows.count() == 2
    text = page.locator("#differences").inner_text()
    assert "Missing on our side" in text and "Missing at Stripe" in text
    assert "re_elsewhere" in text
    shot(page, "admin-books-differences")
    page.get_by_role("link", name="Stripe books").last.click()
    assert page.locator(f"#run-{day.isoformat()}").get_attribute("data-clean") == "no"
