"""Admin: payment plans. The plans list and its filters, what is due soon, a contract's
"Payment plan" section with its actions (pause, resume, move, record offline, cancel) and
the dashboard's tile, without Stripe answering.

Plans are built in the database as a paid deposit leaves them (`payments.plans.start_plan`):
a $200.00 contract (4 sessions of $50.00) with a 25 % deposit of $50.00 paid by card and
three monthly instalments of $50.00. Stripe is an address where nothing listens, so a
refund that passes every check is recorded and left for the sweep.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from html import unescape

import pytest
from sqlalchemy import event, func, select

from tests.admin.test_events_admin import ids_on
from tests.conftest import login

NOON = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
TODAY = NOON.date()


@pytest.fixture
def app_overrides():
    # Nothing listens on port 9 (discard): Stripe cannot be reached, whatever runs locally.
    return {"STRIPE_API_BASE": "http://127.0.0.1:9", "STRIPE_MAX_NETWORK_RETRIES": 0}


@dataclass(frozen=True)
class Built:
    contract_id: int
    plan_id: int
    instalment_ids: list[int]  # by number: [deposit, 1, 2, 3]
    student: object


@pytest.fixture
def plan_contract(app, db, make_user, make_proposal, clock):
    """A contract on a plan whose deposit is paid, written as `start_plan` leaves it."""
    from contracts.models import ContractStatus, PaymentStatus
    from contracts.plans import schedule
    from contracts.services import accept_proposal
    from payments.models import (
        Instalment,
        InstalmentStatus,
        Payment,
        PaymentPlan,
        PaymentRecordStatus,
        PlanStatus,
    )
    from payments.plans import CHARGE_AT

    counter = iter(range(1, 1000))

    def make(*, student=None, started: date | None = None, plan_status="active",
             contract_status="active", **terms) -> Built:
        n = next(counter)
        student = student or make_user("student", name=f"Student {n}")
        contract = accept_proposal(make_proposal(student=student, title=f"Plan coaching {n}",
                                                 **terms), db.session.merge(student))
        started = started or clock.now().date()
        paid_at = datetime.combine(started, CHARGE_AT, tzinfo=UTC)
        charges = schedule(contract.total_amount, 25, 3, started)
        contract.plan_deposit_percent = 25
        contract.plan_max_instalments = 3
        contract.plan_instalments = 3
        contract.status = ContractStatus(contract_status)
        contract.payment_status = PaymentStatus.PARTIALLY_PAID
        contract.paid_at = paid_at
        contract.amount_paid = charges[0].amount
        plan = PaymentPlan(contract_id=contract.id, deposit_percent=25, instalment_count=3,
                           customer_id=f"cus_plan_{n}", status=PlanStatus(plan_status))
        if plan.status is PlanStatus.PAUSED:
            plan.paused_at = clock.now()
        db.session.add(plan)
        db.session.flush()
        rows = []
        for charge in charges:
            row = Instalment(plan_id=plan.id, number=charge.number, amount=charge.amount,
                             due_on=charge.due_on,
                             next_attempt_at=datetime.combine(charge.due_on, CHARGE_AT,
                                                              tzinfo=UTC))
            if charge.number == 0:
                row.status, row.paid_at, row.attempts = InstalmentStatus.PAID, paid_at, 1
            db.session.add(row)
            rows.append(row)
        db.session.flush()
        db.session.add(Payment(
            contract_id=contract.id, amount=charges[0].amount, currency=contract.currency,
            status=PaymentRecordStatus.SUCCEEDED, checkout_session_id=f"cs_test_plan_{n}",
            payment_intent_id=f"pi_plan_{n}", charge_id=f"ch_plan_{n}",
            customer_id=f"cus_plan_{n}", payment_method_type="card", paid_at=paid_at,
            instalment_id=rows[0].id,
        ))
        db.session.commit()
        return Built(contract.id, plan.id, [r.id for r in rows], student)

    return make


def fresh(db, model, row_id):
    db.session.expire_all()
    return db.session.get(model, row_id)


def text_of(html: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"[^>]*>(.*?)</', html, re.S)
    assert match, f"no #{element_id} on the page"
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", match.group(1))).split())


def flashed(html: str) -> list[str]:
    """The flash messages on a page, as text."""
    found = re.findall(r'<div class="alert alert-\w+ alert-dismissible[^>]*>(.*?)<button', html,
                       re.S)
    return [" ".join(unescape(m).split()) for m in found]


def post(client, url: str, data: dict | None = None, *, confirmed: bool = False) -> str:
    """Submit an action's form (confirming it when it moves money) and read the page it
    leads to (the contract's)."""
    if confirmed:
        response = client.submit_confirmed(url, data or {})
    else:
        response = client.submit(url, data or {})
    assert response.status_code == 302, response.status_code
    assert response.headers["Location"].endswith("#payment-plan")
    return client.get(response.headers["Location"]).get_data(as_text=True)


def statuses(db, built: Built) -> list[str]:
    from payments.models import Instalment

    db.session.expire_all()
    return [db.session.get(Instalment, i).status.value for i in built.instalment_ids]


def due_dates(db, built: Built) -> list[date]:
    from payments.models import Instalment

    db.session.expire_all()
    return [db.session.get(Instalment, i).due_on for i in built.instalment_ids]


def count_rows(db, model) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model))


# --- who may see it -----------------------------------------------------------------------


@pytest.mark.parametrize("who", ["anonymous", "student", "coach"])
def test_every_plan_address_is_a_404_to_anyone_but_an_admin(
    db, client, make_user, plan_contract, who, clock
):
    from payments.models import PaymentPlan

    clock.freeze(NOON)
    built = plan_contract()
    if who == "student":
        login(client, built.student)  # even the student whose plan it is
    elif who == "coach":
        login(client, make_user("coach"))
    assert client.get("/admin/plans").status_code == 404
    assert client.get("/admin/plans?status=past_due").status_code == 404
    one = built.instalment_ids[1]
    later = (TODAY + timedelta(days=40)).isoformat()
    for action, data in {
        "pause": {},
        "resume": {},
        "cancel": {"reason": "x"},
        "move": {"instalment_id": one, "due_on": later},
        "record-payment": {"instalment_id": one, "reference": "TR-1"},
    }.items():
        url = f"/admin/contracts/{built.contract_id}/plan/{action}"
        assert client.submit(url, data).status_code == 404, (who, url)
    assert fresh(db, PaymentPlan, built.plan_id).status.value == "active"
    assert statuses(db, built) == ["paid", "scheduled", "scheduled", "scheduled"]


def test_a_contract_without_a_plan_or_another_plans_instalment_is_a_404(
    db, admin_client, plan_contract, make_proposal, make_user, clock
):
    from contracts.services import accept_proposal

    clock.freeze(NOON)
    built, other = plan_contract(), plan_contract()
    student = make_user("student")
    no_plan = accept_proposal(make_proposal(student=student), db.session.merge(student)).id
    db.session.commit()
    for contract_id in (no_plan, 999999):
        for action in ("pause", "resume", "cancel"):
            response = admin_client.submit(f"/admin/contracts/{contract_id}/plan/{action}",
                                           {"reason": "x"})
            assert response.status_code == 404, (contract_id, action)
    url = f"/admin/contracts/{built.contract_id}/plan"
    for instalment_id in (other.instalment_ids[1], 999999, ""):
        assert admin_client.submit(f"{url}/move", {"instalment_id": instalment_id,
                                                   "due_on": "2099-01-01"}).status_code == 404
        assert admin_client.submit(f"{url}/record-payment", {
            "instalment_id": instalment_id, "reference": "TR-1"}).status_code == 404
    assert due_dates(db, other)[1] == date(2026, 4, 2)


# --- the contract's "Payment plan" section -------------------------------------------------


def test_the_contract_page_shows_the_schedule_and_its_actions(
    db, admin_client, plan_contract, make_proposal, make_user, clock
):
    from contracts.models import Contract
    from contracts.services import accept_proposal
    from payments.models import Instalment
    from payments.refunds import quote_now

    clock.freeze(NOON)
    built = plan_contract()
    failing = db.session.get(Instalment, built.instalment_ids[2])
    failing.attempts, failing.last_error = 1, "Your card was declined."
    db.session.commit()

    html = admin_client.get(f"/admin/contracts/{built.contract_id}").get_data(as_text=True)
    section = html[html.index('id="payment-plan"'):html.index('id="money-back"')]
    assert ids_on(section, "instalment") == built.instalment_ids
    assert "25&nbsp;% deposit and 3 monthly instalments" in section
    assert "$50.00 of $200.00 paid" in text_of(section, "plan-summary")
    assert "1 of 4 sessions unlocked" in text_of(section, "plan-summary")
    assert text_of(section, f"due-on-{built.instalment_ids[1]}") == "02 Apr 2026"
    deposit_row = section[section.index(f'id="instalment-{built.instalment_ids[0]}"'):]
    deposit_row = deposit_row[:deposit_row.index("</tr>")]
    assert 'data-status="paid"' in deposit_row and "/admin/payments/" in deposit_row
    assert 'id="move-form' not in deposit_row  # nothing to change on what is paid
    assert "Your card was declined." in section
    assert 'id="pay-link-' not in section  # only an instalment waiting for authentication
    assert 'id="plan-pause-form"' in section and 'id="plan-resume-form"' not in section
    for i in built.instalment_ids[1:]:
        assert f'id="move-form-{i}"' in section and f'id="offline-form-{i}"' in section
    assert section.count('name="csrf_token"') == 2 * 3 + 2  # each form posts its token
    assert text_of(section, "plan-cancel-amount") == "$50.00"
    # The explanation is the policy's own, as `refunds.quote_now` gives it today.
    today = quote_now(fresh(db, Contract, built.contract_id))
    assert today.amount == 5000  # a refund never gives back more than was paid
    assert text_of(section, "plan-cancel-explanation") == today.explanation

    # A contract paid in full has no plan and no such section.
    student = make_user("student")
    other = accept_proposal(make_proposal(student=student), db.session.merge(student))
    db.session.commit()
    html = admin_client.get(f"/admin/contracts/{other.id}").get_data(as_text=True)
    assert 'id="payment-plan"' not in html


def test_pause_then_resume_moves_the_unpaid_dates_on_by_the_whole_days_paused(
    db, admin_client, plan_contract, clock
):
    from payments.models import Instalment, PaymentPlan

    clock.freeze(NOON)
    built = plan_contract()
    before = due_dates(db, built)
    attempt_before = fresh(db, Instalment, built.instalment_ids[1]).next_attempt_at

    page = post(admin_client, f"/admin/contracts/{built.contract_id}/plan/pause")
    assert "The plan is paused: no instalment is charged until it is resumed." in flashed(page)
    plan = fresh(db, PaymentPlan, built.plan_id)
    assert (plan.status.value, plan.paused_at) == ("paused", NOON)
    assert 'id="plan-resume-form"' in page and 'id="plan-pause-form"' not in page
    # Paused twice: the table refuses, and says why.
    page = post(admin_client, f"/admin/contracts/{built.contract_id}/plan/pause")
    assert "This plan was paused already." in flashed(page)

    clock.advance(timedelta(days=10, hours=6))  # ten whole days (and a few hours) later
    page = post(admin_client, f"/admin/contracts/{built.contract_id}/plan/resume")
    assert "The plan is resumed; its unpaid instalments moved on by 10 days." in flashed(page)
    plan = fresh(db, PaymentPlan, built.plan_id)
    assert (plan.status.value, plan.paused_at) == ("active", None)
    after = due_dates(db, built)
    assert after[0] == before[0]  # the deposit was paid: it stays
    assert after[1:] == [d + timedelta(days=10) for d in before[1:]]
    moved = fresh(db, Instalment, built.instalment_ids[1])
    assert moved.next_attempt_at == attempt_before + timedelta(days=10)

    page = post(admin_client, f"/admin/contracts/{built.contract_id}/plan/resume")
    assert "This plan is active already." in flashed(page)
    assert due_dates(db, built) == after


def test_moving_an_instalment_and_refusing_a_date_in_the_past(
    db, admin_client, plan_contract, clock
):
    from payments.models import Instalment

    clock.freeze(NOON)
    built = plan_contract()
    second = built.instalment_ids[2]
    before = due_dates(db, built)

    page = post(admin_client, f"/admin/contracts/{built.contract_id}/plan/move",
                {"instalment_id": second, "due_on": (TODAY - timedelta(days=1)).isoformat()})
    assert "An instalment cannot move into the past." in flashed(page)
    page = post(admin_client, f"/admin/contracts/{built.contract_id}/plan/move",
                {"instalment_id": second, "due_on": ""})
    assert "Choose the new due date." in flashed(page)
    assert due_dates(db, built) == before

    page = post(admin_client, f"/admin/contracts/{built.contract_id}/plan/move",
                {"instalment_id": second, "due_on": "2026-05-20"})
    assert "Instalment 2 is now due on 20 May 2026." in flashed(page)
    moved = fresh(db, Instalment, second)
    assert moved.due_on == date(2026, 5, 20)
    assert moved.next_attempt_at == datetime(2026, 5, 20, 9, 0, tzinfo=UTC)
    assert due_dates(db, built)[1] == before[1] and due_dates(db, built)[3] == before[3]
    assert text_of(page, f"due-on-{second}") == "20 May 2026"

    # What is paid does not move.
    page = post(admin_client, f"/admin/contracts/{built.contract_id}/plan/move",
                {"instalment_id": built.instalment_ids[0], "due_on": "2026-05-20"})
    assert "This instalment is paid; it cannot move." in flashed(page)


def test_an_offline_payment_pays_the_instalment_unlocks_a_session_and_is_invoiced(
    db, admin_client, admin_user, plan_contract, clock
):
    from contracts.models import Contract
    from payments.models import Instalment, Invoice, Payment

    clock.freeze(NOON)
    built = plan_contract()
    first = built.instalment_ids[1]
    assert fresh(db, Contract, built.contract_id).sessions_unlocked == 1

    page = post(admin_client, f"/admin/contracts/{built.contract_id}/plan/record-payment",
                {"instalment_id": first, "reference": " ", "note": "x"})
    assert "The receipt, cheque or transfer reference." in flashed(page)
    assert count_rows(db, Payment) == 1

    page = post(admin_client, f"/admin/contracts/{built.contract_id}/plan/record-payment",
                {"instalment_id": first, "reference": "TR-2026-0042",
                 "note": "Paid at the front desk."}, confirmed=True)
    assert "Instalment 1 ($50.00) recorded as paid offline." in flashed(page)
    instalment = fresh(db, Instalment, first)
    assert (instalment.status.value, instalment.paid_at) == ("paid", NOON)
    payment = db.session.scalar(select(Payment).where(Payment.instalment_id == first))
    assert (payment.status.value, payment.amount, payment.manual_reference) == (
        "succeeded", 5000, "TR-2026-0042")
    assert payment.note == "Paid at the front desk." and payment.recorded_by_id == admin_user.id
    contract = fresh(db, Contract, built.contract_id)
    assert (contract.amount_paid, contract.status.value) == (10000, "active")
    assert contract.payment_status.value == "partially_paid"
    assert contract.sessions_unlocked == 2
    invoice = db.session.scalar(select(Invoice).where(Invoice.payment_id == payment.id))
    assert invoice is not None and invoice.amount == 5000
    assert statuses(db, built) == ["paid", "paid", "scheduled", "scheduled"]
    assert f'id="offline-form-{first}"' not in page  # paid: nothing more to record

    # Recorded twice (two tabs): the second is refused and writes nothing.
    page = post(admin_client, f"/admin/contracts/{built.contract_id}/plan/record-payment",
                {"instalment_id": first, "reference": "TR-2026-0042"})
    assert "This instalment is paid; nothing to record." in flashed(page)
    assert count_rows(db, Payment) == 2 and count_rows(db, Invoice) == 1


def test_an_offline_payment_of_a_failed_instalment_ends_the_past_due(
    db, admin_client, plan_contract, clock
):
    from contracts.models import Contract
    from payments.models import Instalment, InstalmentStatus

    clock.freeze(NOON)
    built = plan_contract(started=date(2026, 1, 11), contract_status="past_due")
    failed = db.session.get(Instalment, built.instalment_ids[1])
    failed.status, failed.attempts = InstalmentStatus.FAILED, 4
    failed.last_error = "Your card was declined."
    db.session.commit()

    page = post(admin_client, f"/admin/contracts/{built.contract_id}/plan/record-payment",
                {"instalment_id": failed.id, "reference": "CHQ-118"}, confirmed=True)
    assert "Instalment 1 ($50.00) recorded as paid offline." in flashed(page)
    contract = fresh(db, Contract, built.contract_id)
    assert (contract.status.value, contract.amount_paid) == ("active", 10000)
    instalment = fresh(db, Instalment, failed.id)
    assert (instalment.status.value, instalment.last_error) == ("paid", None)


def test_cancelling_the_plan_cancels_the_contract_and_records_todays_refund(
    db, admin_client, plan_contract, clock
):
    from contracts.models import Contract
    from payments.models import Payment, PaymentPlan, Refund

    clock.freeze(NOON)
    built = plan_contract()

    url = f"/admin/contracts/{built.contract_id}/plan/cancel"
    page = post(admin_client, url, {"reason": " "})
    assert "Say why the plan is cancelled; both parties see it." in flashed(page)
    assert fresh(db, PaymentPlan, built.plan_id).status.value == "active"

    page = post(admin_client, url, {"reason": "The student moved abroad."}, confirmed=True)
    messages = flashed(page)
    assert any(m.startswith("The plan is cancelled") for m in messages)
    assert ("Refund of $50.00 recorded; Stripe could not be reached just now, so it will be "
            "sent shortly. Nothing more to do.") in messages
    assert fresh(db, PaymentPlan, built.plan_id).status.value == "cancelled"
    assert statuses(db, built) == ["paid", "cancelled", "cancelled", "cancelled"]
    assert fresh(db, Contract, built.contract_id).status.value == "cancelled"
    [refund] = db.session.scalars(select(Refund)).all()
    deposit = db.session.scalar(select(Payment).where(Payment.instalment_id
                                                      == built.instalment_ids[0]))
    assert (refund.status.value, refund.amount, refund.stripe_refund_id) == ("pending", 5000, None)
    assert (refund.payment_id, refund.source.value) == (deposit.id, "admin")
    assert "The student moved abroad." in refund.note
    # Cancelled: no action is offered any more, and a second cancel is refused.
    assert 'id="plan-cancel-form"' not in page and 'id="plan-pause-form"' not in page
    page = post(admin_client, url, {"reason": "Again"})
    assert "This plan was cancelled already." in flashed(page)
    assert count_rows(db, Refund) == 1


def test_a_cancel_the_refund_path_refuses_writes_nothing(db, admin_client, plan_contract, clock):
    from contracts.models import Contract
    from payments.models import Dispute, Payment, PaymentPlan, Refund

    clock.freeze(NOON)
    built = plan_contract()
    deposit = db.session.scalar(select(Payment).where(Payment.contract_id == built.contract_id))
    db.session.add(Dispute(stripe_dispute_id="dp_plan", payment_id=deposit.id,
                           contract_id=built.contract_id, amount=5000, currency="usd",
                           reason="fraudulent", status="needs_response",
                           contract_status_before="active", payment_status_before="succeeded"))
    db.session.commit()

    page = post(admin_client, f"/admin/contracts/{built.contract_id}/plan/cancel",
                {"reason": "Fraud"})
    assert any("no refund can be made until the dispute is closed" in m for m in flashed(page))
    assert fresh(db, PaymentPlan, built.plan_id).status.value == "active"
    assert statuses(db, built) == ["paid", "scheduled", "scheduled", "scheduled"]
    assert fresh(db, Contract, built.contract_id).status.value == "active"
    assert count_rows(db, Refund) == 0


# --- the plans list and the dashboard -----------------------------------------------------


@pytest.fixture
def many_plans(db, plan_contract, clock):
    """Plans of every kind; returns them by name."""
    from payments.models import Instalment, InstalmentStatus

    clock.freeze(NOON)
    plans = {
        "active": plan_contract(),
        "paused": plan_contract(plan_status="paused"),
        "completed": plan_contract(plan_status="completed"),
        "cancelled": plan_contract(plan_status="cancelled", contract_status="cancelled"),
        # Started on 5 February: its first instalment is due on 5 March, in 3 days.
        "due_soon": plan_contract(started=date(2026, 2, 5)),
        # Its first instalment (11 February) failed for good; the next is due on 11 March.
        "past_due": plan_contract(started=date(2026, 1, 11), contract_status="past_due"),
        # Its first instalment (28 February) waits for the student's authentication.
        "authenticate": plan_contract(started=date(2026, 1, 28)),
    }
    failed = db.session.get(Instalment, plans["past_due"].instalment_ids[1])
    failed.status, failed.attempts = InstalmentStatus.FAILED, 4
    failed.last_error = "Your card was declined."
    waiting = db.session.get(Instalment, plans["authenticate"].instalment_ids[1])
    waiting.attempts, waiting.needs_authentication = 1, True
    waiting.last_error = "This payment requires authentication."
    for i in plans["completed"].instalment_ids[1:]:
        db.session.get(Instalment, i).status = InstalmentStatus.PAID
    for i in plans["cancelled"].instalment_ids[1:]:
        db.session.get(Instalment, i).status = InstalmentStatus.CANCELLED
    db.session.commit()
    return plans


def test_the_plans_list_filters_by_status_and_past_due(db, admin_client, many_plans):
    p = many_plans

    def shown(url: str) -> list[int]:
        return ids_on(admin_client.get(url).get_data(as_text=True), "plan")

    everyone = sorted((b.plan_id for b in p.values()), reverse=True)
    assert shown("/admin/plans") == everyone
    assert shown("/admin/plans?status=active") == sorted(
        [p[k].plan_id for k in ("active", "due_soon", "past_due", "authenticate")], reverse=True)
    assert shown("/admin/plans?status=paused") == [p["paused"].plan_id]
    assert shown("/admin/plans?status=completed") == [p["completed"].plan_id]
    assert shown("/admin/plans?status=cancelled") == [p["cancelled"].plan_id]
    assert shown("/admin/plans?status=past_due") == [p["past_due"].plan_id]
    assert shown("/admin/plans?status=nonsense") == everyone  # read as no filter

    html = admin_client.get("/admin/plans").get_data(as_text=True)
    counts = {k: text_of(html, f"count-{k}") for k in
              ("all", "active", "paused", "completed", "cancelled", "past_due")}
    assert counts == {"all": "7", "active": "4", "paused": "1", "completed": "1",
                      "cancelled": "1", "past_due": "1"}
    row = html[html.index(f'id="plan-{p["past_due"].plan_id}"'):]
    row = row[:row.index("</tr>")]
    assert f'href="/admin/contracts/{p["past_due"].contract_id}#payment-plan"' in row
    assert "Contract past due" in row and p["past_due"].student.name in row
    assert "$50.00" in text_of(row, f"paid-{p['past_due'].plan_id}")
    assert "of $200.00" in row
    assert "11 Feb 2026" in text_of(row, f"next-{p['past_due'].plan_id}")  # instalment 1, failed
    failing = row[row.index(f'id="failing-{p["past_due"].plan_id}"'):]
    assert "4 attempts" in failing and "Your card was declined." in failing
    auth_row = html[html.index(f'id="failing-{p["authenticate"].plan_id}"'):]
    auth_row = auth_row[:auth_row.index("</td>")]
    assert "needs authentication" in auth_row and "1 attempt" in auth_row
    assert text_of(html, f"failing-{p['active'].plan_id}") == "—"
    assert "02 Apr 2026 · $50.00" in text_of(html, f"next-{p['active'].plan_id}")

    # Due from today to 9 March: only the one due on 5 March (not one already overdue,
    # nor 11 March, nor the paused plan's).
    due = html[html.index('id="due-soon"'):]
    assert ids_on(due, "due") == [p["due_soon"].instalment_ids[1]]
    row = due[due.index(f'id="due-{p["due_soon"].instalment_ids[1]}"'):]
    row = row[:row.index("</tr>")]
    assert "05 Mar 2026" in row and "#1 of 3" in row and "$50.00" in row
    assert p["due_soon"].student.name in row


def test_the_plans_page_reads_in_a_few_statements(db, app, admin_client, many_plans):
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        assert admin_client.get("/admin/plans").status_code == 200
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    # The user, the unread count, the counts, the page, its instalments, what is due soon:
    # never one per plan.
    assert len(statements) <= 8, statements


def test_the_dashboard_counts_plans_past_due_and_failing_instalments(
    db, admin_client, many_plans
):
    html = admin_client.get("/admin/payments").get_data(as_text=True)
    assert text_of(html, "plans-past-due") == "1"
    assert text_of(html, "instalments-failing") == "2"
    assert 'href="/admin/plans" id="tile-plans"' in html



def test_an_instalment_waiting_for_authentication_shows_the_students_link(
    admin_client, many_plans
):
    built = many_plans["authenticate"]
    waiting = built.instalment_ids[1]
    html = admin_client.get(f"/admin/contracts/{built.contract_id}").get_data(as_text=True)
    row = html[html.index(f'id="instalment-{waiting}"'):]
    row = row[:row.index("</tr>")]
    assert "needs authentication" in row and "This payment requires authentication." in row
    link = f"http://localhost/contracts/{built.contract_id}/instalments/{waiting}/pay"
    assert f'id="pay-link-{waiting}"' in row and f'href="{link}">{link}</a>' in row
