"""A student asks for money back on a paid contract; an administrator decides.

Every contract here is paid for real: Checkout at the sandbox, the signed
webhook, the inbox. The request goes through the page's form; the admin's
decision is taken as the admin console takes it (the service, then commit).
"""

from __future__ import annotations

import html as html_lib
import re

import pytest
from sqlalchemy import select

from tests.conftest import login
from tests.payments.conftest import count

REASON = "My new job leaves me no evening free for the sessions."


def page(client, contract_id: int) -> str:
    response = client.get(f"/contracts/{contract_id}/refund")
    assert response.status_code == 200, response.status_code
    return html_lib.unescape(response.get_data(as_text=True))


def ask(client, contract_id: int, *, category: str = "schedule", reason: str = REASON):
    return client.submit(
        f"/contracts/{contract_id}/refund", {"category": category, "reason": reason}
    )


def requests_of(db, contract_id: int):
    from payments.models import RefundRequest

    db.session.expire_all()
    return list(
        db.session.scalars(
            select(RefundRequest).filter_by(contract_id=contract_id).order_by(RefundRequest.id)
        )
    )


def text_of(html: str, element_id: str) -> str:
    """The text of the element with `element_id` (up to its own closing tag), spaces collapsed."""
    start = re.search(rf'<(\w+)[^>]*\bid="{element_id}"[^>]*>', html)
    assert start, f"no element #{element_id}"
    tag, depth, position = start.group(1), 1, start.end()
    for found in re.finditer(rf"<(/?){tag}\b[^>]*>", html[position:]):
        depth += -1 if found.group(1) else 1
        if depth == 0:
            inner = html[position : position + found.start()]
            return " ".join(re.sub(r"<[^>]+>", " ", inner).split())
    raise AssertionError(f"#{element_id} is not closed")


def log_in_as(client, user):
    """The same browser, now `user`'s (test clients in one thread share the CSRF token)."""
    client.submit("/auth/logout")
    login(client, user)
    return client


def test_the_page_shows_the_terms_and_todays_quote(db, student_client, paid):
    contract_id = paid[0]
    html = page(student_client, contract_id)
    assert "Full refund until your first session or 14 days after payment" in text_of(
        html, "refund-terms"
    )
    assert text_of(html, "quote-amount") == "$200.00"
    assert "No session has been used" in text_of(html, "quote-explanation")
    assert "the full total of $200.00 comes back" in text_of(html, "quote-explanation")
    assert text_of(html, "quote-sessions").startswith("The contract closes")
    # The form: a category from the list, a reason; nothing decided or refunded yet.
    assert 'id="refund-form"' in html
    assert '<option value="schedule">The sessions no longer fit my schedule</option>' in html
    assert '<option value="not_as_described">' in html and 'name="reason"' in html
    assert 'id="no-decisions"' in html and 'id="no-refunds"' in html
    assert 'id="refund-unavailable"' not in html

    # The contract page leads there, for the student only.
    detail = student_client.get(f"/contracts/{contract_id}").get_data(as_text=True)
    assert 'id="money-back"' in detail
    assert f'href="/contracts/{contract_id}/refund"' in detail
    assert "Request a refund for this contract" in detail


def test_a_request_is_written_with_the_quote_and_the_coach_is_told(db, student_client, paid):
    from notifications.models import Notification

    contract_id, student, coach = paid
    response = ask(student_client, contract_id, category="coach_unavailable",
                   reason=f"   {REASON}   ")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/contracts/{contract_id}/refund")

    [request] = requests_of(db, contract_id)
    assert (request.status.value, request.category.value) == ("open", "coach_unavailable")
    assert (request.quoted_amount, request.reason, request.student_id) == (
        20000, REASON, student.id)
    told = db.session.scalars(select(Notification.message).filter_by(user_id=coach.id)).all()
    assert any("Ana Student asked for a refund" in m for m in told)

    followed = html_lib.unescape(
        student_client.get(response.headers["Location"]).get_data(as_text=True))
    assert "Your request was sent" in followed
    # The open request, as asked, and no second form.
    assert text_of(followed, "open-request-quote") == "$200.00"
    assert text_of(followed, "open-request-reason") == REASON
    assert "The coach is not available" in followed
    assert 'id="refund-form"' not in followed


def test_a_second_request_is_refused_and_writes_nothing(db, student_client, paid):
    contract_id = paid[0]
    assert ask(student_client, contract_id).status_code == 302
    again = ask(student_client, contract_id, category="other", reason="Asking a second time.")
    assert again.status_code == 200
    html = html_lib.unescape(again.get_data(as_text=True))
    assert text_of(html, "refund-refused") == (
        "You have already asked for a refund on this contract.")
    [request] = requests_of(db, contract_id)
    assert (request.category.value, request.reason) == ("schedule", REASON)


@pytest.mark.parametrize("who", ["coach", "stranger", "admin"])
def test_only_the_student_of_the_contract_can_ask(db, student_client, paid, make_user, who):
    contract_id, _student, coach = paid
    user = coach if who == "coach" else make_user("student" if who == "stranger" else "admin")
    client = log_in_as(student_client, user)
    assert client.get(f"/contracts/{contract_id}/refund").status_code == 404
    assert ask(client, contract_id).status_code == 404
    assert requests_of(db, contract_id) == []
    if who == "coach":
        detail = client.get(f"/contracts/{contract_id}").get_data(as_text=True)
        assert 'id="money-back"' not in detail and f'/contracts/{contract_id}/refund"' not in detail
        # The coach's own card gives money back instead (tests/payments/test_refund_offers.py).
        assert f'/contracts/{contract_id}/refund/offer"' in detail


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"reason": "Too short"}, "Write between 10 and 2000 characters."),
        ({"reason": "   short      "}, "Write between 10 and 2000 characters."),
        ({"reason": "x" * 2001}, "Write between 10 and 2000 characters."),
        ({"reason": ""}, "Say why you are asking for a refund."),
        ({"category": ""}, "Choose what went wrong."),
    ],
)
def test_an_invalid_form_shows_its_error_and_writes_nothing(
    db, student_client, paid, data, error
):
    contract_id = paid[0]
    response = ask(student_client, contract_id, **data)
    assert response.status_code == 200
    html = html_lib.unescape(response.get_data(as_text=True))
    assert error in html and 'id="refund-form"' in html
    assert requests_of(db, contract_id) == []


def test_an_unpaid_contract_has_nothing_to_refund(db, student_client, pending_contract):
    from notifications.models import Notification

    contract_id = pending_contract[0]
    html = page(student_client, contract_id)
    why = "Nothing has been paid for this contract, so there is nothing to refund."
    assert text_of(html, "refund-unavailable") == why
    assert 'id="refund-form"' not in html and 'id="quote-amount"' not in html
    told = count(db, Notification)

    # A form posted anyway is refused by the service with the same words.
    response = ask(student_client, contract_id)
    assert response.status_code == 200
    assert text_of(html_lib.unescape(response.get_data(as_text=True)), "refund-refused") == why
    assert requests_of(db, contract_id) == []
    assert count(db, Notification) == told
    detail = student_client.get(f"/contracts/{contract_id}").get_data(as_text=True)
    assert 'id="money-back"' not in detail


def test_a_rejected_request_shows_the_admins_note(app, db, student_client, paid, admin):
    from payments import refunds

    contract_id = paid[0]
    assert ask(student_client, contract_id).status_code == 302
    [request] = requests_of(db, contract_id)
    with app.test_request_context():
        refunds.reject_request(request.id, db.session.merge(admin),
                               note="Two sessions were booked this week; talk to your coach first.")
        db.session.commit()

    html = page(student_client, contract_id)
    decisions = text_of(html, "refund-decisions")
    assert "Not approved" in decisions
    assert "Two sessions were booked this week; talk to your coach first." in decisions
    # Decided: the student may ask again, still for today's quote; nothing was refunded.
    assert 'id="open-request"' not in html and 'id="refund-form"' in html
    assert text_of(html, "quote-amount") == "$200.00"
    assert 'id="no-refunds"' in html
