"""A student withdraws a refund request; a coach gives money back from the contract.

Every contract here is paid for real ($200.00, 4 sessions at $50.00): Checkout at the
sandbox, the signed webhook, the inbox. Pages are driven through their forms; a refund
goes to the sandbox through the SDK.
"""

from __future__ import annotations

import html as html_lib
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.payments.conftest import payments, wait_until_state
from tests.payments.test_refund_requests import ask, log_in_as, page, requests_of, text_of

OFFER_REASON = "The third session was cut short by my connection."


def notices(db, user) -> list[str]:
    from notifications.models import Notification

    db.session.expire_all()
    return list(db.session.scalars(select(Notification.message).filter_by(user_id=user.id)
                                   .order_by(Notification.id)))


def audit_actions(db, kind: str) -> list[str]:
    from audit.models import AuditEntry

    db.session.expire_all()
    return list(db.session.scalars(select(AuditEntry.action)
                                   .where(AuditEntry.action.like(f"{kind}.%"))
                                   .order_by(AuditEntry.id)))


def refunds_of(db, contract_id):
    from payments.models import Refund

    db.session.expire_all()
    return list(db.session.scalars(select(Refund).filter_by(contract_id=contract_id)
                                   .order_by(Refund.id)))


def read(response) -> str:
    return html_lib.unescape(response.get_data(as_text=True))


def flashed(client, response) -> str:
    assert response.status_code == 302, response.status_code
    return read(client.get(response.headers["Location"]))


def withdraw(client, contract_id, request_id):
    return client.submit(f"/contracts/{contract_id}/refund/requests/{request_id}/withdraw")


def offer(client, contract_id, amount: str, reason: str = OFFER_REASON, confirm: bool = False):
    data = {"amount": amount, "reason": reason}
    if confirm:
        data["confirm"] = "1"
    return client.submit(f"/contracts/{contract_id}/refund/offer", data)


@pytest.fixture
def one_session_used(db, paid):
    """A session of `paid` completed: the policy now gives back the 3 not used, $150.00."""
    from contracts.models import CoachingSession, Contract, SessionStatus

    contract_id, student, coach = paid
    contract = db.session.get(Contract, contract_id)
    start = contract.paid_at - timedelta(hours=2)
    db.session.add(CoachingSession(
        contract_id=contract_id, coach_id=coach.id,
        booked_by_id=student.id, starts_at=start,
        ends_at=start + timedelta(minutes=contract.minutes_per_session),
        status=SessionStatus.COMPLETED))
    db.session.commit()
    return paid


# --- the student withdraws ----------------------------------------------------------------


def test_the_student_withdraws_an_open_request_and_both_are_told(
    db, student_client, paid, admin
):
    contract_id, student, coach = paid
    assert ask(student_client, contract_id).status_code == 302
    [request] = requests_of(db, contract_id)
    html = page(student_client, contract_id)
    assert "Withdraw this request" in text_of(html, "withdraw-form")

    shown = flashed(student_client, withdraw(student_client, contract_id, request.id))
    assert "Your refund request was withdrawn; Maya Coach has been told." in shown
    [request] = requests_of(db, contract_id)
    assert request.status.value == "withdrawn"
    assert request.decided_by_id == student.id and request.decided_at is not None
    assert audit_actions(db, "refund_request") == [
        "refund_request.created", "refund_request.withdrawn"]
    assert any("Ana Student withdrew their refund request" in m for m in notices(db, coach))
    assert any("You withdrew your refund request" in m for m in notices(db, student))
    assert refunds_of(db, contract_id) == []
    # The page lists it as withdrawn, and a new request can be made.
    assert 'data-status="withdrawn"' in shown and 'id="refund-form"' in shown
    assert "You withdrew it on" in shown


def test_a_withdrawn_request_leaves_the_queue_and_cannot_be_decided(
    app, db, student_client, paid, admin
):
    from payments import refunds

    contract_id, student, _coach = paid
    ask(student_client, contract_id)
    [request] = requests_of(db, contract_id)
    withdraw(student_client, contract_id, request.id)

    admin_view = log_in_as(student_client, admin)
    queue = read(admin_view.get("/admin/refunds"))
    assert f'id="request-{request.id}"' not in queue and 'id="requests-empty"' in queue

    with app.test_request_context():
        for decide in (lambda: refunds.approve_request(request.id, db.session.merge(admin)),
                       lambda: refunds.reject_request(request.id, db.session.merge(admin),
                                                      note="Outside the policy.")):
            with pytest.raises(refunds.RefundRefused,
                               match="The student withdrew this request on .*; there is "
                                     "nothing left to decide"):
                decide()
            db.session.rollback()
        [outcome] = refunds.decide_many([request.id], db.session.merge(admin), approve=True)
    assert not outcome.ok and "withdrew" in outcome.message
    assert refunds_of(db, contract_id) == []
    assert requests_of(db, contract_id)[0].status.value == "withdrawn"


def test_the_student_can_ask_again_after_withdrawing(db, student_client, paid):
    contract_id = paid[0]
    ask(student_client, contract_id)
    [first] = requests_of(db, contract_id)
    withdraw(student_client, contract_id, first.id)
    assert ask(student_client, contract_id, category="other",
               reason="I asked too early, now I am sure.").status_code == 302
    assert [r.status.value for r in requests_of(db, contract_id)] == ["withdrawn", "open"]


def test_a_decided_request_cannot_be_withdrawn(app, db, student_client, paid, admin):
    from payments import refunds

    contract_id = paid[0]
    ask(student_client, contract_id)
    [request] = requests_of(db, contract_id)
    with app.test_request_context():
        refunds.reject_request(request.id, db.session.merge(admin), note="Outside the policy.")
        db.session.commit()
    shown = flashed(student_client, withdraw(student_client, contract_id, request.id))
    assert "This request was rejected already; there is nothing to withdraw." in shown
    assert requests_of(db, contract_id)[0].status.value == "rejected"


def test_only_the_student_who_asked_can_withdraw(db, student_client, paid, make_user):
    contract_id, _student, coach = paid
    ask(student_client, contract_id)
    [request] = requests_of(db, contract_id)
    for user in (coach, make_user("student", name="Other Student")):
        other = log_in_as(student_client, user)
        assert withdraw(other, contract_id, request.id).status_code == 404
    assert requests_of(db, contract_id)[0].status.value == "open"


# --- the coach gives money back --------------------------------------------------------------


def test_the_coach_refunds_within_the_terms_after_a_confirmation(db, student_client, paid):
    contract_id, student, coach = paid
    coach_client = log_in_as(student_client, coach)
    detail = read(coach_client.get(f"/contracts/{contract_id}"))
    assert "Give money back" in text_of(detail, "give-money-back")

    form = read(coach_client.get(f"/contracts/{contract_id}/refund/offer"))
    assert text_of(form, "offer-policy") == "$200.00"
    assert 'value="200.00"' in form

    confirming = offer(coach_client, contract_id, "50")
    assert confirming.status_code == 200
    shown = read(confirming)
    assert text_of(shown, "confirm-amount") == "$50.00"
    assert text_of(shown, "confirm-contract").startswith(f"#{contract_id} “")
    assert "Ana Student" in text_of(shown, "confirm-student")
    assert "Maya Coach" in text_of(shown, "confirm-coach")
    assert 'data-outcome="refund"' in shown
    assert "so it is refunded at once" in text_of(shown, "confirm-outcome")
    assert refunds_of(db, contract_id) == []  # nothing moves before the confirmation

    done = flashed(coach_client, offer(coach_client, contract_id, "50.00", confirm=True))
    assert "Refunded $50.00." in done
    [refund] = refunds_of(db, contract_id)
    assert (refund.amount, refund.status.value, refund.source.value) == (5000, "succeeded", "coach")
    assert (refund.requested_by_id, refund.note) == (coach.id, OFFER_REASON)
    assert payments(db, contract_id)[0].amount_refunded == 5000
    assert requests_of(db, contract_id) == []
    assert "refund.offered" in audit_actions(db, "refund")
    assert any("Maya Coach refunded you $50.00" in m and OFFER_REASON in m
               for m in notices(db, student))
    assert any("You refunded $50.00" in m for m in notices(db, coach))
    wait_until_state(db, contract_id, ("active", "partially_refunded"))


def test_an_offer_above_the_terms_goes_to_an_admin_who_approves_it(
    app, db, student_client, one_session_used, admin
):
    from payments import refunds

    contract_id, student, coach = one_session_used
    coach_client = log_in_as(student_client, coach)
    shown = read(offer(coach_client, contract_id, "180"))
    assert 'data-outcome="admin"' in shown and "($150.00)" in text_of(shown, "confirm-outcome")

    done = flashed(coach_client, offer(coach_client, contract_id, "180", confirm=True))
    assert "an administrator decides it" in done
    assert refunds_of(db, contract_id) == []
    [request] = requests_of(db, contract_id)
    assert (request.status.value, request.offered_amount, request.quoted_amount,
            request.student_id) == ("open", 18000, 15000, student.id)
    assert any("Maya Coach offered you a refund of $180.00" in m for m in notices(db, student))
    assert "refund_request.offered" in audit_actions(db, "refund_request")

    # The student sees it, and cannot withdraw the coach's offer.
    student_client = log_in_as(coach_client, student)
    student_page = page(student_client, contract_id)
    assert text_of(student_page, "open-request-offer") == "$180.00"
    assert 'id="withdraw-form"' not in student_page
    assert "Refund of $180.00 offered by Maya Coach on" in " ".join(
        read(student_client.get("/payments")).split())
    shown = flashed(student_client, withdraw(student_client, contract_id, request.id))
    assert "This refund was offered by Maya Coach; an administrator decides it." in shown

    admin_client = log_in_as(student_client, admin)
    queue = read(admin_client.get("/admin/refunds"))
    assert text_of(queue, f"offered-{request.id}") == "$180.00"
    assert 'value="180.00"' in queue and "The coach offered this refund" in queue
    assert "The coach offered this refund: $180.00" in text_of(
        read(admin_client.get(f"/admin/contracts/{contract_id}")), "request-rows")
    with app.test_request_context():
        refund = refunds.approve_request(request.id, db.session.merge(admin))
        db.session.commit()
        sent = refunds.send_refund(refund.id)
    assert (sent.amount, sent.status.value, sent.source.value, sent.requested_by_id) == (
        18000, "succeeded", "coach", coach.id)
    assert any("approved your refund offer" in m for m in notices(db, coach))


@pytest.mark.parametrize(("amount", "error"), [
    ("0", "The amount must be more than zero."),
    ("-5", "The amount must be more than zero."),
    ("200.001", "USD takes at most 2 decimals."),
    ("250", "Only $200.00 is still refundable on this contract; $250.00 is more than that."),
])
def test_a_bad_amount_is_refused_with_its_reason_and_nothing_changes(
    db, student_client, paid, amount, error
):
    contract_id, _student, coach = paid
    coach_client = log_in_as(student_client, coach)
    for confirm in (False, True):
        response = offer(coach_client, contract_id, amount, confirm=confirm)
        assert response.status_code == 200
        shown = read(response)
        assert error in text_of(shown, "amount-error")
        assert 'id="offer-confirm"' not in shown
    assert refunds_of(db, contract_id) == [] and requests_of(db, contract_id) == []


def test_an_offer_without_a_reason_is_refused(db, student_client, paid):
    contract_id, _student, coach = paid
    coach_client = log_in_as(student_client, coach)
    shown = read(offer(coach_client, contract_id, "50", reason="  ", confirm=True))
    assert "Say why you give this money back" in shown
    assert refunds_of(db, contract_id) == []


def test_an_offer_above_the_terms_waits_while_the_students_request_is_open(
    db, student_client, one_session_used
):
    contract_id, _student, coach = one_session_used
    ask(student_client, contract_id)
    coach_client = log_in_as(student_client, coach)
    shown = read(offer(coach_client, contract_id, "180", confirm=True))
    assert "Ana Student has a refund request waiting for an administrator" in text_of(
        shown, "amount-error")
    assert [r.offered_amount for r in requests_of(db, contract_id)] == [None]
    # Within the terms it still goes through, and the student's request stays for an admin.
    done = flashed(coach_client, offer(coach_client, contract_id, "20", confirm=True))
    assert "Refunded $20.00." in done
    assert [r.amount for r in refunds_of(db, contract_id)] == [2000]


def test_only_the_coach_of_the_contract_can_give_money_back(
    db, student_client, paid, make_user
):
    contract_id, student, _coach = paid
    assert offer(student_client, contract_id, "50", confirm=True).status_code == 404
    stranger = log_in_as(student_client, make_user("coach", name="Other Coach"))
    assert offer(stranger, contract_id, "50", confirm=True).status_code == 404
    assert refunds_of(db, contract_id) == []


def test_nothing_can_be_given_back_on_an_unpaid_contract(db, client, pending_contract):
    from tests.conftest import login

    contract_id, _student, coach = pending_contract
    login(client, coach)
    shown = read(client.get(f"/contracts/{contract_id}/refund/offer"))
    assert "Nothing has been paid for this contract" in text_of(shown, "offer-unavailable")
    refused = offer(client, contract_id, "50", confirm=True)
    assert refused.status_code == 200
    assert "Nothing has been paid" in text_of(read(refused), "offer-unavailable")
    assert refunds_of(db, contract_id) == [] and requests_of(db, contract_id) == []
