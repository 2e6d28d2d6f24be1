"""Shares, holds, transfers and reversals end to end at the sandbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from tests.payouts.conftest import (
    deliver_sessions,
    onboard_coach,
    run_payouts,
    settle_funds,
    shares,
    stripe_transfers,
)
from tests.support import at_once

HOLD = timedelta(days=3)


def test_a_share_waits_in_its_hold_then_is_due(db, clock, paid, deliver):
    from payouts.models import ShareStatus

    contract_id = paid[0]
    deliver(1)
    marked = clock.now()
    run_payouts(db)
    [share] = shares(db, contract_id)
    assert (share.number, share.amount, share.currency) == (1, 4750, "usd")
    assert share.due_at == marked + HOLD
    assert share.status is ShareStatus.HELD
    clock.freeze(marked + HOLD - timedelta(minutes=1))
    run_payouts(db)
    assert shares(db, contract_id)[0].status is ShareStatus.HELD
    clock.freeze(marked + HOLD)
    run_payouts(db)
    # Due, and with no connected account it waits there.
    assert shares(db, contract_id)[0].status is ShareStatus.DUE


def test_a_completed_session_is_transferred_once_to_a_ready_account(
    db, clock, sandbox, paid, deliver, ready_account
):
    from payments.models import Payment
    from payouts.models import ShareStatus

    contract_id = paid[0]
    deliver(1)
    clock.advance(HOLD)
    run_payouts(db)
    run_payouts(db)  # a second run finds nothing more to send
    [share] = shares(db, contract_id)
    assert share.status is ShareStatus.TRANSFERRED
    assert share.stripe_transfer_id.startswith("tr_") and share.attempts == 1
    [transfer] = stripe_transfers(sandbox, ready_account)
    charge = db.session.scalar(select(Payment.charge_id).filter_by(contract_id=contract_id))
    assert transfer["id"] == share.stripe_transfer_id
    assert (transfer["amount"], transfer["currency"]) == (4750, "usd")
    assert transfer["transfer_group"] == f"contract-{contract_id}"
    assert transfer["source_transaction"] == share.source_charge_id
    assert charge in (None, share.source_charge_id)
    assert transfer["metadata"]["session_id"] == str(share.session_id)


def test_the_command_sends_what_is_due_past_the_hold(
    db, runner, sandbox, paid, deliver, ready_account
):
    from payouts.models import ShareStatus

    contract_id = paid[0]
    deliver(1)
    early = runner.invoke(args=["payouts", "transfer-due"])
    assert early.output.strip() == "0 transfer(s) due: none sent"
    result = runner.invoke(args=["payouts", "transfer-due", "--ahead", "4d"])
    assert result.exit_code == 0, result.output
    assert "1 transfer(s) due: transferred" in result.output
    assert [s.status for s in shares(db, contract_id)] == [ShareStatus.TRANSFERRED]
    assert runner.invoke(args=["payouts", "ledger-check"]).exit_code == 0


def test_sending_ahead_is_refused_against_stripe_itself(
    app, db, runner, sandbox, paid, deliver, ready_account
):
    contract_id = paid[0]
    deliver(1)
    app.config.update(STRIPE_USES_SANDBOX=False)
    try:
        result = runner.invoke(args=["payouts", "transfer-due", "--ahead", "4d"])
    finally:
        app.config.update(STRIPE_USES_SANDBOX=True)
    assert result.exit_code == 2
    assert "runs only against the Stripe sandbox" in " ".join(result.output.split())
    assert shares(db, contract_id) == []  # nothing made or sent


def test_nothing_goes_to_an_account_not_ready_and_all_waits_go_once_it_is(
    db, clock, sandbox, paid, deliver, connected, onboard
):
    from payouts.models import ShareStatus

    contract_id = paid[0]
    deliver(3)
    clock.advance(HOLD)
    run_payouts(db)
    assert [s.status for s in shares(db, contract_id)] == [ShareStatus.DUE] * 3
    assert stripe_transfers(sandbox, connected) == []
    onboard(connected)
    run_payouts(db)
    assert [s.status for s in shares(db, contract_id)] == [ShareStatus.TRANSFERRED] * 3
    assert sorted(t["amount"] for t in stripe_transfers(sandbox, connected)) == [4750] * 3


def test_an_open_dispute_holds_transfers(db, clock, sandbox, paid, deliver, ready_account):
    from payments.models import Dispute, Payment
    from payouts.models import ShareStatus
    from tests.support import wait_for

    contract_id = paid[0]
    deliver(1)
    clock.advance(HOLD)
    charge = db.session.scalar(select(Payment.charge_id).filter_by(contract_id=contract_id))
    assert charge, "the paid fixture knows its charge"
    assert sandbox.tool(f"charges/{charge}/dispute").status_code == 200

    def disputed() -> bool:
        db.session.expire_all()
        return db.session.scalar(select(func.count()).select_from(Dispute)) == 1

    wait_for(disputed, 10, "the dispute to be recorded")
    run_payouts(db)
    assert shares(db, contract_id)[0].status is ShareStatus.DUE
    assert stripe_transfers(sandbox, ready_account) == []


def _refund(db, contract_id: int, admin, amount: int) -> None:
    from payments import refunds
    from payments.models import RefundStatus

    refund = refunds.refund_contract(contract_id, db.session.merge(admin), amount=amount,
                                     note="goodwill")
    db.session.commit()
    assert refunds.send_refund(refund.id).status is RefundStatus.SUCCEEDED


def test_a_partial_refund_after_two_transfers_reverses_each_in_proportion(
    db, clock, sandbox, paid, deliver, ready_account, admin, runner
):
    from payouts.models import ShareStatus

    contract_id = paid[0]
    deliver(2)
    clock.advance(HOLD)
    run_payouts(db)
    assert [s.status for s in shares(db, contract_id)] == [ShareStatus.TRANSFERRED] * 2
    settle_funds(sandbox)  # the coach's transfers are available: reversals can take them
    _refund(db, contract_id, admin, 5000)  # a quarter of $200.00
    run_payouts(db)
    run_payouts(db)  # once only
    assert [s.reversed_amount for s in shares(db, contract_id)] == [1188, 1188]  # 1187.5 up
    for transfer in stripe_transfers(sandbox, ready_account):
        assert transfer["amount_reversed"] == 1188
    # The next session is sent net of the refund.
    deliver(1)
    clock.advance(HOLD)
    run_payouts(db)
    third = shares(db, contract_id)[2]
    assert (third.status, third.transfer_amount, third.reversed_amount) == (
        ShareStatus.TRANSFERRED, 4750 - 1188, 0)
    result = runner.invoke(args=["payouts", "ledger-check"])
    assert result.exit_code == 0, result.output


def _reversal_notices(db, coach) -> list[str]:
    from notifications.models import Notification

    db.session.expire_all()
    return [n.message for n in db.session.scalars(
        select(Notification).where(Notification.user_id == coach.id,
                                   Notification.message.contains("Stripe balance")))]


def test_a_reversal_the_coach_balance_cannot_cover_waits_until_it_can(
    db, clock, sandbox, paid, deliver, ready_account, admin, runner
):
    from payouts.models import PlatformLoss

    contract_id, _, coach = paid
    deliver(1)
    clock.advance(HOLD)
    run_payouts(db)
    # The coach's transfer is still pending at Stripe: nothing available to take back.
    _refund(db, contract_id, admin, 10000)
    run_payouts(db)
    [share] = shares(db, contract_id)
    assert (share.reversed_amount, share.lost_amount, share.reversal_refusals) == (0, 0, 1)
    assert share.reversal_waiting and "balance_insufficient" in share.reversal_error
    assert share.reversal_next_attempt_at == clock.now() + timedelta(minutes=15)
    [notice] = _reversal_notices(db, coach)
    assert "$23.75" in notice and "keep at least $23.75" in notice
    result = runner.invoke(args=["payouts", "ledger-check"])
    assert result.exit_code == 0, result.output  # waiting, not lost

    run_payouts(db)  # not before its time
    assert shares(db, contract_id)[0].reversal_refusals == 1
    clock.advance(timedelta(minutes=15))
    run_payouts(db)  # refused again, a new key; 30 minutes next
    [share] = shares(db, contract_id)
    assert share.reversal_refusals == 2
    assert share.reversal_next_attempt_at == clock.now() + timedelta(minutes=30)
    assert stripe_transfers(sandbox, ready_account)[0]["amount_reversed"] == 0

    topped = sandbox.tool(f"accounts/{ready_account}/balance", currency="usd", available=5000)
    assert topped.status_code == 200, topped.text
    clock.advance(timedelta(minutes=30))
    run_payouts(db)
    [share] = shares(db, contract_id)
    assert (share.reversed_amount, share.lost_amount) == (2375, 0)
    assert not share.reversal_waiting and share.reversal_error is None
    assert stripe_transfers(sandbox, ready_account)[0]["amount_reversed"] == 2375
    assert db.session.scalars(select(PlatformLoss)).all() == []
    assert len(_reversal_notices(db, coach)) == 1
    result = runner.invoke(args=["payouts", "ledger-check"])
    assert result.exit_code == 0, result.output


def test_a_reversal_still_refused_after_the_give_up_time_is_one_platform_loss(
    db, clock, sandbox, paid, deliver, ready_account, admin, runner
):
    from payouts.models import PlatformLoss
    from payouts.transfers import REVERSAL_GIVE_UP

    contract_id, _, coach = paid
    deliver(1)
    clock.advance(HOLD)
    run_payouts(db)
    response = sandbox.tool(f"accounts/{ready_account}/balance", currency="usd", available=0,
                            pending=0)
    assert response.status_code == 200, response.text
    _refund(db, contract_id, admin, 10000)
    run_payouts(db)
    assert db.session.scalars(select(PlatformLoss)).all() == []
    clock.advance(REVERSAL_GIVE_UP - timedelta(minutes=1))
    run_payouts(db)  # refused again, still waiting
    assert shares(db, contract_id)[0].reversal_refusals == 2
    assert db.session.scalars(select(PlatformLoss)).all() == []
    clock.advance(timedelta(hours=12))
    run_payouts(db)
    run_payouts(db)  # never asked again
    [loss] = db.session.scalars(select(PlatformLoss)).all()
    assert (loss.amount, loss.currency, loss.contract_id) == (2375, "usd", contract_id)
    assert "balance_insufficient" in loss.reason
    [share] = shares(db, contract_id)
    assert (share.reversed_amount, share.lost_amount) == (0, 2375)
    assert not share.reversal_waiting
    assert len(_reversal_notices(db, coach)) == 1
    result = runner.invoke(args=["payouts", "ledger-check"])
    assert result.exit_code == 0, result.output


# A charge's money pending for a month: the share is due before the money is available.
@pytest.mark.parametrize("sandbox_knobs", [{"SANDBOX_AVAILABLE_AFTER_DAYS": "30"}])
def test_a_share_whose_charge_is_pending_waits_until_the_money_is_available(
    db, clock, sandbox, paid, ready_account, sandbox_knobs
):
    from payments.models import Payment
    from payouts.models import ShareStatus

    contract_id, _, coach = paid
    charge = db.session.scalar(select(Payment.charge_id).filter_by(contract_id=contract_id))
    available = _available_at(sandbox, charge)
    # One session on the next Monday at 09:00 UTC (at least two days away), delivered.
    today = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0)
    starts = today + timedelta(days=2 + (7 - (today + timedelta(days=2)).weekday()) % 7)
    deliver_sessions(db, clock, contract_id, coach, starts)
    clock.advance(HOLD)
    assert clock.now() < available
    run_payouts(db)
    [share] = shares(db, contract_id)
    assert (share.status, share.next_attempt_at, share.refusals) == (
        ShareStatus.DUE, available, 0)
    assert "Waiting for the student's payment" in share.last_error
    assert stripe_transfers(sandbox, ready_account) == []

    clock.freeze(available - timedelta(minutes=1))
    run_payouts(db)
    assert stripe_transfers(sandbox, ready_account) == []
    settle_funds(sandbox, timedelta(days=30))
    clock.freeze(available)
    run_payouts(db)
    [share] = shares(db, contract_id)
    assert (share.status, share.last_error, share.refusals) == (
        ShareStatus.TRANSFERRED, None, 0)
    [transfer] = stripe_transfers(sandbox, ready_account)
    assert (transfer["amount"], transfer["source_transaction"]) == (4750, charge)
    # Transferred from money Stripe holds no longer: the coach's share is available at once.
    assert _balance(sandbox, ready_account) == (4750, 0)


def _available_at(sandbox, charge_id: str) -> datetime:
    import requests

    from tests.payments.conftest import API_KEY

    response = requests.get(f"{sandbox.url}/v1/charges/{charge_id}",
                            params={"expand[]": "balance_transaction"}, timeout=10,
                            headers={"Authorization": f"Bearer {API_KEY}"})
    assert response.status_code == 200, response.text
    return datetime.fromtimestamp(response.json()["balance_transaction"]["available_on"], UTC)


def _balance(sandbox, account_id: str) -> tuple[int, int]:
    import requests

    from tests.payments.conftest import API_KEY

    response = requests.get(f"{sandbox.url}/v1/balance", timeout=10,
                            headers={"Authorization": f"Bearer {API_KEY}",
                                     "Stripe-Account": account_id})
    assert response.status_code == 200, response.text
    body = response.json()
    available = {b["currency"]: b["amount"] for b in body["available"]}
    pending = {b["currency"]: b["amount"] for b in body["pending"]}
    return available.get("usd", 0), pending.get("usd", 0)


def test_a_full_refund_cancels_shares_not_sent(db, clock, sandbox, paid, deliver, admin):
    from payouts.models import ShareStatus

    contract_id = paid[0]
    deliver(1)
    run_payouts(db)
    _refund(db, contract_id, admin, 20000)
    run_payouts(db)
    assert shares(db, contract_id)[0].status is ShareStatus.CANCELLED


@pytest.mark.ledger_dirty
def test_the_ledger_check_reports_a_tampered_contract(
    db, clock, sandbox, paid, deliver, ready_account, runner
):
    from payouts.models import SessionShare

    contract_id = paid[0]
    deliver(2)
    clock.advance(HOLD)
    run_payouts(db)
    result = runner.invoke(args=["payouts", "ledger-check"])
    assert result.exit_code == 0, result.output
    share = shares(db, contract_id)[0]
    db.session.get(SessionShare, share.id).transfer_amount = 4000
    db.session.commit()
    result = runner.invoke(args=["payouts", "ledger-check"])
    assert result.exit_code == 1
    assert f"contract {contract_id} (usd)" in result.output
    assert "off by 750" in result.output


@pytest.mark.postgres
def test_two_jobs_at_once_transfer_a_session_once(
    app, db, clock, sandbox, paid, deliver, ready_account
):
    from payouts import transfers

    contract_id = paid[0]
    deliver(1)
    clock.advance(HOLD)
    from payouts.shares import make_session_shares

    make_session_shares.call_local()
    share_id = shares(db, contract_id)[0].id
    outcomes = at_once(app, transfers.transfer_share, [share_id, share_id])
    assert sorted(outcomes) == ["not_due", "transferred"]
    assert len(stripe_transfers(sandbox, ready_account)) == 1


def test_a_share_of_a_contract_paid_offline_waits_for_the_platform_balance(
    db, clock, sandbox, pending_contract, admin
):
    """Paid offline, the share comes from the platform's available balance: refused while
    it is short (and asked again for days, not hours), sent once it is there."""
    from payments.manual import record_manual_payment
    from payments.models import ManualMethod
    from payouts.models import ShareStatus

    contract_id, _, coach = pending_contract
    record_manual_payment(contract_id, db.session.merge(admin),
                          method=ManualMethod.BANK_TRANSFER, reference="TR-7",
                          received_on=clock.now().date(), note="")
    db.session.commit()
    account_id = onboard_coach(db, sandbox, coach)
    deliver_sessions(db, clock, contract_id, coach, datetime(2027, 5, 3, 9, 0, tzinfo=UTC))
    clock.advance(HOLD)
    run_payouts(db)
    [share] = shares(db, contract_id)
    assert (share.status, share.refusals) == (ShareStatus.FAILED, 1)
    assert "balance_insufficient" in share.last_error
    assert share.next_attempt_at == clock.now() + timedelta(minutes=15)
    clock.advance(timedelta(minutes=15))
    run_payouts(db)
    [share] = shares(db, contract_id)
    assert (share.status, share.refusals) == (ShareStatus.FAILED, 2)
    assert share.next_attempt_at == clock.now() + timedelta(minutes=30)

    topped = sandbox.tool("balance/top_up", amount=10000, currency="usd")
    assert topped.status_code == 200, topped.text
    clock.advance(timedelta(minutes=30))
    run_payouts(db)
    [share] = shares(db, contract_id)
    assert share.status is ShareStatus.TRANSFERRED
    [transfer] = stripe_transfers(sandbox, account_id)
    assert (transfer["amount"], transfer["source_transaction"]) == (4750, None)
    assert _balance(sandbox, account_id) == (4750, 0)
