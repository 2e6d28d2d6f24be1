"""A membership's periods as contracts: each paid invoice opens a paid contract of its
period, whose credits are booked through scheduling inside the period, whose coach is paid
per delivered session from the period's earning, and whose money (refunds included)
stands in the money core like any contract's."""

from __future__ import annotations

from datetime import timedelta

import requests
from sqlalchemy import select

from tests.conftest import login
from tests.payments.test_memberships import (
    advance_sandbox_clock,
    grants,
    join,
    membership_of,
)
from tests.support import wait_for


def period_contracts(db, membership_id: int):
    from contracts.models import Contract

    db.session.expire_all()
    return list(db.session.scalars(select(Contract).where(
        Contract.membership_id == membership_id).order_by(Contract.period_start)))


def joined(client, db, sandbox, offer_id, student, periods: int = 1):
    login(client, student)
    join(client, db, sandbox, offer_id, student)
    return wait_for(
        lambda: (m := membership_of(db, student.id)) is not None
        and len(period_contracts(db, m.id)) == periods and m,
        what="the first period's contract")


def free_starts(app, contract_id: int, days: int = 40):
    """The contract's bookable starts from today, one a day (so none overlaps another)."""
    import clock
    from contracts.models import Contract
    from extensions import db
    from scheduling import availability

    with app.app_context():
        contract = db.session.get(Contract, contract_id)
        today = clock.now().date()
        firsts: dict = {}
        for slot in availability.free_slots(contract, from_day=today, days=days):
            firsts.setdefault(slot.starts_at.date(), slot.starts_at)
        return list(firsts.values())


def book(client, contract_id: int, starts_at):
    from scheduling.availability import slot_value

    return client.submit(f"/contracts/{contract_id}/schedule",
                         {"slot": slot_value(starts_at), "note": "", "confirm_late": "1"})


def renew(db, sandbox, clock, membership, periods: int):
    """Move the sandbox's clock and the app's past the period's end; wait for the renewal."""
    now = requests.get(f"{sandbox.url}/_sandbox/clock", timeout=10).json()["now"]
    seconds = int(membership.current_period_end.timestamp()) - now + 60
    advance_sandbox_clock(sandbox, seconds)
    clock.advance(timedelta(seconds=seconds))
    wait_for(lambda: len(period_contracts(db, membership.id)) == periods,
             what="the renewal's contract")


def test_each_paid_invoice_is_a_paid_contract_of_its_period(
        app, client, db, sandbox, membership_offer, member, coach):
    from contracts.services import fee_quote
    from payments.models import Payment
    from payments.standing import standing_of

    membership = joined(client, db, sandbox, membership_offer, member)
    [period] = period_contracts(db, membership.id)
    [grant] = grants(db, membership.id)
    assert grant.contract_id == period.id
    assert (period.status.value, period.payment_status.value) == ("active", "paid")
    assert (period.session_count, period.minutes_per_session, period.total_amount) == (4, 45, 4000)
    assert (period.coach_id, period.student_id, period.currency) == (coach.id, member.id, "usd")
    assert (period.period_start, period.period_end) == (
        membership.current_period_start, membership.current_period_end)
    with app.app_context():
        split = fee_quote(price_per_session=4000, session_count=1, currency="usd")
    assert (period.platform_fee, period.coach_earning) == (split.platform_fee, split.coach_earning)
    payment = db.session.scalar(select(Payment).where(Payment.contract_id == period.id))
    assert payment.stripe_invoice_id == grant.stripe_invoice_id
    assert payment.payment_intent_id.startswith("pi_") and payment.charge_id.startswith("ch_")
    assert (payment.amount, payment.status.value) == (4000, "succeeded")
    with app.app_context():
        money = standing_of(db.session.merge(period))
    assert (money.arrived, money.returned) == (4000, 0)
    # The student's contract page says what it is; it cannot be cancelled on its own.
    page = client.get(f"/contracts/{period.id}").get_data(as_text=True)
    assert "Monthly coaching ·" in page


def test_four_credits_are_booked_in_the_period_a_fifth_is_refused_and_renewal_grants_four_more(
        app, client, db, sandbox, membership_offer, member, clock):
    membership = joined(client, db, sandbox, membership_offer, member)
    [period] = period_contracts(db, membership.id)
    starts = free_starts(app, period.id)
    assert starts and all(period.period_start <= s < period.period_end for s in starts)
    # A credit is used in its own period: a time after its end is refused.
    after_end = period.period_end + timedelta(days=2)
    from scheduling.availability import slot_value
    late = client.submit(f"/contracts/{period.id}/schedule",
                         {"slot": slot_value(after_end.replace(minute=0, second=0,
                                                               microsecond=0))})
    assert "credits are used by sessions starting before" in late.get_data(as_text=True)
    for starts_at in starts[:4]:
        assert book(client, period.id, starts_at).status_code == 302
    refused = book(client, period.id, starts[4]).get_data(as_text=True)
    assert "Every session of this contract is booked or used." in refused


    renew(db, sandbox, clock, membership_of(db, member.id), periods=2)
    _, second = period_contracts(db, membership.id)
    assert second.period_start == period.period_end and second.session_count == 4
    assert (second.status.value, second.payment_status.value) == ("active", "paid")
    fresh = free_starts(app, second.id)
    assert fresh and all(second.period_start <= s < second.period_end for s in fresh)
    assert book(client, second.id, fresh[0]).status_code == 302
    # The old period offers nothing any more, and says why.
    page = client.get(f"/contracts/{period.id}/schedule").get_data(as_text=True)
    assert "can no longer be used" in page or "booked or used" in page


def test_unused_credits_roll_over_up_to_the_limit(
        app, client, db, sandbox, membership_offer, member, clock):
    app.config["MEMBERSHIP_ROLLOVER_LIMIT"] = 1
    membership = joined(client, db, sandbox, membership_offer, member)
    [period] = period_contracts(db, membership.id)
    starts = free_starts(app, period.id)
    assert book(client, period.id, starts[0]).status_code == 302  # 3 left unused

    renew(db, sandbox, clock, membership_of(db, member.id), periods=2)
    first, second = period_contracts(db, membership.id)
    assert (first.rollover_sessions, first.rollover_until) == (1, second.period_end)
    rolled = free_starts(app, first.id)
    assert rolled and all(first.period_end <= s < second.period_end for s in rolled)
    assert book(client, first.id, rolled[0]).status_code == 302
    refused = book(client, first.id, rolled[1]).get_data(as_text=True)
    assert "Only 1 unused credit of this period roll over" in refused
    page = client.get(f"/memberships/{membership.id}").get_data(as_text=True)
    assert "Up to 1 unused session" in page


def test_the_coach_is_paid_per_delivered_session_from_the_periods_earning(
        app, client, db, sandbox, membership_offer, member, coach, clock):
    from payments.standing import split
    from payouts.models import SessionShare
    from payouts.shares import make_shares

    membership = joined(client, db, sandbox, membership_offer, member)
    [period] = period_contracts(db, membership.id)
    for starts_at in free_starts(app, period.id)[:4]:
        assert book(client, period.id, starts_at).status_code == 302
    from contracts.models import CoachingSession

    booked = list(db.session.scalars(select(CoachingSession).where(
        CoachingSession.contract_id == period.id).order_by(CoachingSession.starts_at)))
    clock.advance(booked[-1].ends_at - clock.now() + timedelta(minutes=1))
    client.submit("/auth/logout")
    login(client, coach)
    for session in booked:
        assert client.submit(f"/sessions/{session.id}/complete").status_code == 302
    with app.app_context():
        from extensions import db as app_db

        make_shares(period.id)
        app_db.session.commit()
    db.session.expire_all()
    shares = list(db.session.scalars(select(SessionShare).where(
        SessionShare.contract_id == period.id).order_by(SessionShare.number)))
    assert [share.amount for share in shares] == split(period.coach_earning, 4)
    assert sum(share.amount for share in shares) == period.coach_earning


def test_a_refund_of_a_period_goes_back_on_its_invoice_payment(
        app, client, db, sandbox, membership_offer, member, admin, stripe_client):
    from payments.models import Payment
    from payments.refunds.decisions import refund_contract

    membership = joined(client, db, sandbox, membership_offer, member)
    [period] = period_contracts(db, membership.id)
    with app.app_context():
        from extensions import db as app_db

        refund_contract(period.id, app_db.session.merge(admin), amount=1000, note="Goodwill.")
        app_db.session.commit()
    payment = db.session.scalar(select(Payment).where(Payment.contract_id == period.id))
    refunded = wait_for(
        lambda: [r for r in stripe_client.v1.refunds.list(
            {"payment_intent": payment.payment_intent_id}).data if r.status == "succeeded"],
        what="Stripe's refund of the invoice's payment")
    assert [r.amount for r in refunded] == [1000]
    db.session.expire_all()
    wait_for(lambda: (db.session.expire_all() or True) and db.session.get(
        type(period), period.id).amount_returned == 1000, what="the refund mirrored")


def test_the_dashboard_counts_membership_periods_as_their_own_source(
        client, db, sandbox, membership_offer, member, admin):
    joined(client, db, sandbox, membership_offer, member)
    client.submit("/auth/logout")
    login(client, admin)
    page = client.get("/admin/payments").get_data(as_text=True)
    row = page.split('data-offer="memberships" data-currency="usd"', 1)[1].split("</tr>", 1)[0]
    assert 'data-gross="4000"' in row and "Memberships" in row
    assert 'data-offer="proposals"' not in page  # nothing else was paid


def test_a_period_whose_window_is_over_closes_once_its_sessions_are_marked(
        app, client, db, sandbox, membership_offer, member, coach, clock):
    from contracts.models import CoachingSession, Contract
    from notifications.models import Notification
    from offers.membership_periods import close_ended_periods

    membership = joined(client, db, sandbox, membership_offer, member)
    [period] = period_contracts(db, membership.id)
    assert book(client, period.id, free_starts(app, period.id)[0]).status_code == 302

    def close() -> int:
        import jobs
        from extensions import db as app_db

        with app.app_context(), jobs.job_context():  # as the hourly job runs
            closed = close_ended_periods()
            app_db.session.commit()
            return closed

    clock.advance(period.period_end - clock.now() + timedelta(minutes=1))
    assert close() == 0  # its session is still to be marked
    assert period_contracts(db, membership.id)[0].status.value == "active"
    booked = db.session.scalar(select(CoachingSession).where(
        CoachingSession.contract_id == period.id))
    client.submit("/auth/logout")
    login(client, coach)
    assert client.submit(f"/sessions/{booked.id}/complete").status_code == 302
    assert close() == 1
    assert close() == 0  # once
    db.session.expire_all()
    assert db.session.get(Contract, period.id).status.value == "completed"
    told = [n.message for n in db.session.scalars(select(Notification).where(
        Notification.user_id == member.id))]
    assert sum("is over; its 3 unused sessions expired." in m for m in told) == 1, told
