"""The audit log viewer: entries newest first, filters, links to what they are about."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from tests.admin.test_events_admin import ids_on, walk
from tests.conftest import login

NOON = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def add_entry(db, admin_user):
    """Insert an audit entry: add_entry("contract.paid", "contracts", 7, by=admin)."""
    from audit.models import AuditEntry

    def add(action: str, object_type: str, object_id: int, *, by=None, label: str | None = None,
            at: datetime = NOON, before=None, after=None) -> int:
        entry = AuditEntry(
            actor_id=by.id if by else None,
            actor_label=label or (by.email if by else "system"),
            action=action,
            object_type=object_type,
            object_id=object_id,
            before=before,
            after=after,
            created_at=at,
        )
        db.session.add(entry)
        db.session.commit()
        return entry.id

    return add


def shown(client, query: str = "") -> list[int]:
    return ids_on(client.get(f"/admin/audit?{query}").get_data(as_text=True), "audit")


def test_the_log_shows_entries_newest_first_with_links(admin_client, admin_user, add_entry):
    paid = add_entry("contract.paid", "contracts", 7, label="stripe:webhook",
                     before={"status": "pending"}, after={"status": "active", "payment_id": 3})
    replay = add_entry("event.replayed", "webhook_events", 12, by=admin_user,
                       after={"result": "unchanged"})
    role = add_entry("user.updated", "users", 5, by=admin_user)
    page = admin_client.get("/admin/audit").get_data(as_text=True)
    assert ids_on(page, "audit") == [role, replay, paid]

    row = page[page.index(f'id="audit-{paid}"'):page.index(f'id="audit-{paid}"') + 1500]
    assert "stripe:webhook" in row and "contract.paid" in row
    assert 'href="/admin/contracts/7"' in row
    # before → after, as compact JSON (escaped by the template)
    assert "{&#34;status&#34;:&#34;pending&#34;}" in row
    assert "{&#34;status&#34;:&#34;active&#34;,&#34;payment_id&#34;:3}" in row
    assert 'href="/admin/events/12"' in page
    assert 'href="/admin/users?user_id=5"' in page
    assert f'href="/admin/users?user_id={admin_user.id}">ada@example.com</a>' in page


def test_a_session_entry_links_to_its_contract(db, admin_client, add_entry, make_user,
                                               make_proposal):
    from contracts.models import CoachingSession
    from contracts.services import accept_proposal

    student = make_user("student")
    contract = accept_proposal(make_proposal(student=student), db.session.merge(student))
    db.session.flush()
    session = CoachingSession(contract_id=contract.id, coach_id=contract.coach_id,
                              booked_by_id=student.id, starts_at=NOON,
                              ends_at=NOON + timedelta(hours=1))
    db.session.add(session)
    db.session.commit()
    add_entry("session.booked", "coaching_sessions", session.id)
    page = admin_client.get("/admin/audit").get_data(as_text=True)
    assert f'href="/admin/contracts/{contract.id}#sessions">Session #{session.id}</a>' in page


def test_filters_narrow_the_log(admin_client, admin_user, make_user, add_entry):
    other_admin = make_user("admin", email="bo@example.com")
    by_ada = add_entry("event.replayed", "webhook_events", 1, by=admin_user)
    by_bo = add_entry("payment.manual_recorded", "payments", 2, by=other_admin)
    by_stripe = add_entry("contract.paid", "contracts", 2, label="stripe:webhook")
    by_stripe_plain = add_entry("payment.failed", "payments", 2, label="stripe")
    by_system = add_entry("contract.completed", "contracts", 3, label="system")

    assert shown(admin_client, "actor=ada@example.com") == [by_ada]
    assert shown(admin_client, "actor=BO@example.com") == [by_bo]
    assert shown(admin_client, "actor=stripe") == [by_stripe_plain, by_stripe]
    assert shown(admin_client, "actor=stripe:webhook") == [by_stripe]
    assert shown(admin_client, "actor=system") == [by_system]
    assert shown(admin_client, "action=contract.paid") == [by_stripe]
    assert shown(admin_client, "object_type=payments") == [by_stripe_plain, by_bo]
    assert shown(admin_client, "object_type=payments&object_id=2") == [by_stripe_plain, by_bo]
    assert shown(admin_client, "object_id=2") == [by_stripe_plain, by_stripe, by_bo]
    page = admin_client.get("/admin/audit").get_data(as_text=True)
    assert '<option value="payment.manual_recorded">' in page  # the actions present
    assert '<option value="webhook_events">' in page  # and the object types


def test_the_date_range_is_read_in_the_viewers_time_zone(admin_client, add_entry):
    # The admin's zone is UTC: 9 March 23:30 UTC is still the 9th; the 11th is out of range.
    late_on_9th = add_entry("a", "contracts", 1, at=datetime(2025, 3, 9, 23, 30, tzinfo=UTC))
    on_10th = add_entry("b", "contracts", 1, at=datetime(2025, 3, 10, 0, 0, tzinfo=UTC))
    end_of_10th = add_entry("c", "contracts", 1, at=datetime(2025, 3, 10, 23, 59, tzinfo=UTC))
    on_11th = add_entry("d", "contracts", 1, at=datetime(2025, 3, 11, 0, 0, tzinfo=UTC))

    assert shown(admin_client, "from=2025-03-10&to=2025-03-10") == [end_of_10th, on_10th]
    assert shown(admin_client, "from=2025-03-10") == [on_11th, end_of_10th, on_10th]
    assert shown(admin_client, "to=2025-03-09") == [late_on_9th]
    assert shown(admin_client, "from=not-a-date") == [on_11th, end_of_10th, on_10th, late_on_9th]


def test_dates_follow_a_non_utc_admin(db, client, make_user, add_entry):
    tokyo = make_user("admin", email="kenji@example.com", timezone="Asia/Tokyo")
    login(client, tokyo)
    # 10 March 20:00 UTC is already 11 March in Tokyo.
    evening = add_entry("a", "contracts", 1, at=datetime(2025, 3, 10, 20, 0, tzinfo=UTC))
    assert shown(client, "from=2025-03-11&to=2025-03-11") == [evening]
    assert shown(client, "to=2025-03-10") == []


def test_keyset_pages_have_no_gaps_or_repeats(db, admin_client, admin_user):
    from audit.models import AuditEntry

    db.session.add_all(
        AuditEntry(actor_id=None, actor_label="system" if n % 3 else "stripe",
                   action="contract.paid", object_type="contracts", object_id=n)
        for n in range(120)
    )
    db.session.commit()
    every = list(db.session.scalars(select(AuditEntry.id).order_by(AuditEntry.id.desc())))
    seen, pages = walk(admin_client, "/admin/audit", "audit")
    assert seen == every and pages == 3

    stripe = list(db.session.scalars(
        select(AuditEntry.id).where(AuditEntry.actor_label == "stripe")
        .order_by(AuditEntry.id.desc())
    ))
    seen, pages = walk(admin_client, "/admin/audit?actor=stripe", "audit")
    assert seen == stripe and len(stripe) == 40 and pages == 1


@pytest.mark.parametrize("role", ["student", "coach", None])
def test_the_audit_log_is_404_to_everyone_but_admins(client, make_user, add_entry, role):
    add_entry("contract.paid", "contracts", 1)
    if role:
        login(client, make_user(role))
    for url in ("/admin/audit", "/admin/audit?actor=system"):
        assert client.get(url).status_code == 404, url
