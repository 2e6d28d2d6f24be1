"""Every admin address: 404 to anyone but an admin, 200 to an admin."""

from __future__ import annotations

from datetime import date

import pytest

from tests.conftest import login


@pytest.fixture
def objects(db, make_user, make_proposal):
    """One of each thing an admin page is about; their ids by URL parameter name."""
    from books.models import ReconciliationRun
    from contracts.services import accept_proposal
    from payments.models import EventStatus, Payment, WebhookEvent

    student = make_user("student")
    contract = accept_proposal(make_proposal(student=student), db.session.merge(student))
    payment = Payment(contract_id=contract.id, amount=contract.total_amount,
                      currency=contract.currency, checkout_session_id="cs_test_access")
    event = WebhookEvent(stripe_event_id="evt_access", type="customer.updated", payload="{}",
                         status=EventStatus.PROCESSED, outcome="ignored")
    db.session.add_all([payment, event])
    db.session.commit()
    run = ReconciliationRun(day=date(2026, 12, 1))
    db.session.add(run)
    db.session.commit()
    return {"contract_id": contract.id, "payment_id": payment.id, "event_id": event.id,
            "user_id": student.id, "decision": "accept", "day": run.day.isoformat(),
            "membership_id": _membership(db, contract)}


def _membership(db, contract) -> int:
    """A membership of the contract's parties, joining (Checkout not finished)."""
    from offers.models import Membership, MembershipOffer, MembershipPeriod

    terms = {"title": "Monthly", "sessions_per_period": 2, "minutes_per_session": 30,
             "price_per_period": 4000, "currency": "usd", "period": MembershipPeriod.MONTH}
    offer = MembershipOffer(coach_id=contract.coach_id, **terms)
    db.session.add(offer)
    db.session.flush()
    membership = Membership(student_id=contract.student_id, coach_id=contract.coach_id,
                            offer_id=offer.id, **terms)
    db.session.add(membership)
    db.session.commit()
    return membership.id


# The rules that take the paths and methods no page takes (admin/views.py).
CATCH_ALL = {"admin.unknown", "admin.unknown_root"}
METHODS = ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE")
MADE_UP = ("/admin", "/admin/nothing-here", "/admin/payments/0/nothing", "/admin/.env",
           "/admin//payments", "/admin/users/999999")


def admin_addresses(app, objects) -> list[tuple[str, str]]:
    """(method, URL) of every route of the admin blueprint, its parameters filled in."""
    addresses = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("admin.") or rule.endpoint in CATCH_ALL:
            continue
        url = rule.rule
        for name in rule.arguments:
            url = url.replace(f"<int:{name}>", str(objects[name]))
            url = url.replace(f"<any(accept, refund):{name}>", str(objects[name]))
            url = url.replace(f"<{name}>", str(objects[name]))
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            addresses.append((method, url))
    return addresses


def test_the_console_has_the_addresses_it_promises(app, objects):
    urls = {url for _, url in admin_addresses(app, objects)}
    for path in ("/admin/payments", "/admin/payments/list", "/admin/reviews", "/admin/events",
                 "/admin/audit", "/admin/contracts", "/admin/users", "/admin/books"):
        assert path in urls


@pytest.mark.parametrize("who", ["anonymous", "student", "coach"])
def test_every_admin_address_is_a_404_to_anyone_else(app, client, make_user, objects, who):
    if who != "anonymous":
        login(client, make_user(who))
    token = client.csrf_token()
    for method, url in admin_addresses(app, objects):
        response = client.open(url, method=method, data={"csrf_token": token})
        assert response.status_code == 404, (who, method, url, response.status_code)


def test_every_admin_page_answers_an_admin(app, admin_client, objects):
    for method, url in admin_addresses(app, objects):
        if method != "GET":
            continue
        response = admin_client.get(url)
        assert response.status_code in (200, 302), (url, response.status_code)
        if response.status_code == 302:
            assert url == "/admin/"  # the console's root goes to the dashboard


def wrong_methods(app, objects) -> list[tuple[str, str]]:
    """(method, URL) of each admin page with every method its route does not take."""
    taken: dict[str, set[str]] = {}
    for method, url in admin_addresses(app, objects):
        taken.setdefault(url, {"HEAD", "OPTIONS"}).add(method)
    return [(method, url) for url, methods in taken.items()
            for method in METHODS if method not in methods]


@pytest.mark.parametrize("who", ["anonymous", "student", "coach"])
def test_a_wrong_method_or_a_made_up_address_is_a_404_to_anyone_else(
    app, client, make_user, objects, who
):
    if who != "anonymous":
        login(client, make_user(who))
    token = client.csrf_token()
    tried = wrong_methods(app, objects)
    assert ("DELETE", "/admin/payments") in tried
    tried += [(method, url) for url in MADE_UP for method in METHODS]
    # HEAD and OPTIONS too: Flask answers them itself for any route, after the admin check.
    tried += [(method, url) for _, url in admin_addresses(app, objects)
              for method in ("HEAD", "OPTIONS")]
    for method, url in tried:
        for data in ({"csrf_token": token}, {}):  # a missing CSRF token is no tell either
            response = client.open(url, method=method, data=data)
            assert response.status_code == 404, (who, method, url, response.status_code)


def test_an_admin_gets_the_console_at_its_bare_address_and_a_404_for_made_up_ones(
    admin_client,
):
    assert admin_client.get("/admin").headers["Location"] == "/admin/payments"
    for url in MADE_UP[1:]:
        assert admin_client.get(url).status_code == 404, url


def test_an_admin_form_without_its_csrf_token_is_refused(admin_client, objects):
    response = admin_client.post(f"/admin/events/{objects['event_id']}/replay")
    assert response.status_code == 400
