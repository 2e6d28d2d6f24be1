"""The console's memberships: the list, a membership's page and the dashboard's figures.

The data set (clock frozen at 2024-05-10 12:00 UTC; the window is June 2023 to May 2024):

    key  student  offer        price     status              first paid  ended
    ivy  Ivy      usd monthly  $160.00   canceled            2023-01-10  2023-09-20
    fay  Fay      usd monthly  $160.00   canceled            2023-12-10  2024-04-15
    hal  Hal      jpy weekly   ¥3,000    incomplete_expired  never       2024-02-02
    ana  Ana      usd monthly  $160.00   active              2024-03-05  (3 periods paid)
    ben  Ben      usd monthly  $160.00   past_due            2024-04-01  (renewal failed)
    dan  Dan      jpy weekly   ¥3,000    active              2024-04-20
    jon  Jon      usd monthly  $160.00   active              (created 2024-05-01, no invoice yet)
    eve  Eve      jpy weekly   ¥3,002    active              2024-05-02  (2 periods paid)
    cleo Cleo     usd weekly   $25.00    active, ends with the period  2024-05-08
    gus  Gus      usd monthly  $160.00   joining             never

MRR: usd 3 × $160.00 + $25.00 × 52 ÷ 12 ($108.333… → $108.33) = $588.33;
jpy (¥3,000 + ¥3,002) × 52 ÷ 12 = ¥26,008.67 → ¥26,009; four usd memberships billed, two jpy.

Members: Ivy at the window's start; joined Fay 2023-12, Ana 2024-03, Ben and Dan 2024-04,
Jon, Eve and Cleo 2024-05 (Hal and Gus never paid); left Ivy 2023-09, Fay 2024-04. So
2023-09: 1 of 1 left (100.0 %), 2023-10: nobody (—), 2024-04: 1 of 2 (50.0 %), 2024-05:
0 of 3 (0.0 %).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from html import unescape

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from tests.admin.test_events_admin import ids_on, walk
from tests.conftest import login
from tests.payments.test_history_pages import statements

NOW = datetime(2024, 5, 10, 12, 0, tzinfo=UTC)


def at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(hour=9, tzinfo=UTC)


@pytest.fixture
def offers(db, make_user):
    from offers.models import MembershipOffer, MembershipPeriod

    maya = make_user("coach", email="maya@example.com", name="Maya Coach")
    tomas = make_user("coach", email="tomas@example.com", name="Tomás Ferreira")
    made = {
        "usd": MembershipOffer(coach_id=maya.id, title="Monthly coaching", sessions_per_period=4,
                               minutes_per_session=45, price_per_period=16000, currency="usd",
                               period=MembershipPeriod.MONTH),
        "usd_weekly": MembershipOffer(coach_id=maya.id, title="Weekly check-in",
                                      sessions_per_period=1, minutes_per_session=20,
                                      price_per_period=2500, currency="usd",
                                      period=MembershipPeriod.WEEK),
        "jpy": MembershipOffer(coach_id=tomas.id, title="Weekly Portuguese",
                               sessions_per_period=1, minutes_per_session=30,
                               price_per_period=3000, currency="jpy",
                               period=MembershipPeriod.WEEK),
    }
    for key, offer in made.items():
        offer.stripe_product_id, offer.stripe_price_id = f"prod_{key}", f"price_{key}"
    db.session.add_all(made.values())
    db.session.commit()
    return {key: offer.id for key, offer in made.items()}


@pytest.fixture
def make_membership(db, make_user):
    """A membership of an offer as Stripe's events would have left it, with one credit
    grant per paid period given (start, end); its id."""
    from offers.models import CreditGrant, Membership, MembershipOffer, MembershipStatus

    def make(offer_id: int, name: str, status: str, created: str, *, paid=(), price=None,
             ended: str | None = None, period: tuple[str, str] | None = None,
             cancel_at_period_end: bool = False) -> int:
        offer = db.session.get(MembershipOffer, offer_id)
        student = make_user("student", name=name, email=f"{name.lower()}@example.com")
        membership = Membership(
            student_id=student.id, coach_id=offer.coach_id, offer_id=offer.id,
            title=offer.title, sessions_per_period=offer.sessions_per_period,
            minutes_per_session=offer.minutes_per_session,
            price_per_period=price or offer.price_per_period, currency=offer.currency,
            period=offer.period, status=MembershipStatus(status), created_at=at(created),
            stripe_price_id=offer.stripe_price_id,
            stripe_subscription_id=None if status == "joining" else f"sub_{name.lower()}",
            cancel_at_period_end=cancel_at_period_end,
            ended_at=at(ended) if ended else None,
        )
        if period:
            membership.current_period_start, membership.current_period_end = map(at, period)
        db.session.add(membership)
        db.session.flush()
        for n, (start, end) in enumerate(paid, 1):
            db.session.add(CreditGrant(
                membership_id=membership.id, stripe_invoice_id=f"in_{name.lower()}_{n}",
                sessions=membership.sessions_per_period, period_start=at(start),
                period_end=at(end), amount_paid=membership.price_per_period,
                currency=membership.currency, granted_at=at(start)))
        db.session.commit()
        return membership.id

    return make


@pytest.fixture
def memberships(clock, offers, make_membership):
    clock.freeze(NOW)
    usd, weekly, jpy = offers["usd"], offers["usd_weekly"], offers["jpy"]
    made = {
        "ivy": make_membership(usd, "Ivy", "canceled", "2023-01-10", ended="2023-09-20",
                               paid=[("2023-01-10", "2023-02-10")]),
        "fay": make_membership(usd, "Fay", "canceled", "2023-12-10", ended="2024-04-15",
                               paid=[("2023-12-10", "2024-01-10"), ("2024-01-10", "2024-02-10")]),
        "hal": make_membership(jpy, "Hal", "incomplete_expired", "2024-02-01",
                               ended="2024-02-02"),
        "ana": make_membership(usd, "Ana", "active", "2024-03-05",
                               period=("2024-05-05", "2024-06-05"),
                               paid=[("2024-03-05", "2024-04-05"), ("2024-04-05", "2024-05-05"),
                                     ("2024-05-05", "2024-06-05")]),
        "ben": make_membership(usd, "Ben", "past_due", "2024-04-01",
                               period=("2024-05-01", "2024-06-01"),
                               paid=[("2024-04-01", "2024-05-01")]),
        "dan": make_membership(jpy, "Dan", "active", "2024-04-20",
                               period=("2024-05-04", "2024-05-11"),
                               paid=[("2024-04-20", "2024-04-27"), ("2024-05-04", "2024-05-11")]),
        "jon": make_membership(usd, "Jon", "active", "2024-05-01",
                               period=("2024-05-01", "2024-06-01")),
        "eve": make_membership(jpy, "Eve", "active", "2024-05-02", price=3002,
                               period=("2024-05-09", "2024-05-16"),
                               paid=[("2024-05-02", "2024-05-09"), ("2024-05-09", "2024-05-16")]),
        "cleo": make_membership(weekly, "Cleo", "active", "2024-05-08",
                                period=("2024-05-08", "2024-05-15"), cancel_at_period_end=True,
                                paid=[("2024-05-08", "2024-05-15")]),
        "gus": make_membership(usd, "Gus", "joining", "2024-05-09"),
    }
    return made


def shown(client, url: str) -> list[int]:
    return ids_on(client.get(url).get_data(as_text=True), "membership")


def row_of(page: str, membership_id: int) -> str:
    row = page[page.index(f'<tr id="membership-{membership_id}"'):]
    return row[:row.index("</tr>")]


# --- the arithmetic ----------------------------------------------------------------------


def test_a_month_of_a_weekly_price_is_52_twelfths_rounded_half_up():
    from admin.membership_figures import monthly_amount
    from offers.models import MembershipPeriod

    assert monthly_amount(16000, MembershipPeriod.MONTH) == 16000
    assert monthly_amount(3000, MembershipPeriod.WEEK) == 13000
    assert monthly_amount(2500, MembershipPeriod.WEEK) == 10833  # 10,833.33…
    assert monthly_amount(3002, MembershipPeriod.WEEK) == 13009  # 13,008.67
    assert monthly_amount(0, MembershipPeriod.WEEK) == 0
    with pytest.raises(ValueError):
        monthly_amount(-1, MembershipPeriod.MONTH)


@given(st.integers(min_value=0, max_value=10**15))
def test_monthly_normalisation_is_the_nearest_whole_minor_unit_and_never_negative(amount):
    from admin.membership_figures import monthly_amount
    from offers.models import MembershipPeriod

    exact = Fraction(amount * 52, 12)
    weekly = monthly_amount(amount, MembershipPeriod.WEEK)
    assert weekly >= 0 and isinstance(weekly, int)
    assert -Fraction(1, 2) < weekly - exact <= Fraction(1, 2)  # ties go up
    assert monthly_amount(amount, MembershipPeriod.MONTH) == amount


def test_churn_is_left_over_members_at_the_start_and_none_without_members():
    from admin.membership_figures import churn_rate, months_back

    assert churn_rate(1, 2) == 0.5
    assert churn_rate(0, 3) == 0.0
    assert churn_rate(0, 0) is None
    assert months_back(date(2024, 2, 29), 3) == [date(2023, 12, 1), date(2024, 1, 1),
                                                 date(2024, 2, 1)]


# --- the list ---------------------------------------------------------------------------------


def test_the_list_shows_every_membership_newest_first_with_its_figures(
        admin_client, memberships):
    m = memberships
    page = admin_client.get("/admin/memberships").get_data(as_text=True)
    order = ["gus", "cleo", "eve", "jon", "dan", "ben", "ana", "hal", "fay", "ivy"]
    assert ids_on(page, "membership") == [m[key] for key in order]
    ana = row_of(page, m["ana"])
    assert "Ana" in ana and "ana@<wbr>example.com" in ana and "Maya Coach" in ana
    assert "$160.00" in ana and "/ month" in ana and 'data-status="active"' in ana
    assert 'data-credits="4"' in ana and "05 Jun 2024" in ana and "05 Mar 2024" in ana
    assert 'data-credits="0"' in row_of(page, m["ben"])  # the renewal was not paid
    assert 'data-status="past_due"' in row_of(page, m["ben"])
    assert 'data-credits="1"' in row_of(page, m["eve"])  # the running period's grant only
    cleo = row_of(page, m["cleo"])
    assert "data-cancel-at-period-end" in cleo and "$25.00" in cleo and "/ week" in cleo
    assert "data-cancel-at-period-end" not in ana
    assert "¥3,002" in row_of(page, m["eve"])
    assert "ended 15 Apr 2024" in row_of(page, m["fay"])
    assert 'href="/admin/memberships"' in page and 'aria-current="page" href="/admin/memb' in page


def test_filters_and_search_narrow_the_list(admin_client, memberships):
    m = memberships
    assert shown(admin_client, "/admin/memberships?status=past_due") == [m["ben"]]
    assert shown(admin_client, "/admin/memberships?status=canceled") == [m["fay"], m["ivy"]]
    assert shown(admin_client, "/admin/memberships?q=cleo") == [m["cleo"]]
    assert shown(admin_client, "/admin/memberships?q=TOMAS") == [m["eve"], m["dan"], m["hal"]]
    assert shown(admin_client, "/admin/memberships?q=tomas&status=active") == [m["eve"], m["dan"]]
    assert shown(admin_client, "/admin/memberships?q=weekly check") == [m["cleo"]]
    assert shown(admin_client, "/admin/memberships?q=ana%40example") == [m["ana"]]
    assert shown(admin_client, f"/admin/memberships?q=%23{m['ben']}") == [m["ben"]]
    assert shown(admin_client, "/admin/memberships?status=nonsense") == shown(
        admin_client, "/admin/memberships")
    empty = admin_client.get("/admin/memberships?q=nobody").get_data(as_text=True)
    assert "No membership matches these filters." in empty


def test_pages_have_no_gaps_or_repeats_in_a_few_statements(
        db, admin_client, offers, make_membership, clock):
    from offers.models import Membership

    clock.freeze(NOW)
    for n in range(110):
        make_membership(offers["usd" if n % 2 else "jpy"], f"Bulk{n}", "active", "2024-05-01",
                        paid=[("2024-05-01", "2024-06-01")])
    every = list(db.session.scalars(select(Membership.id).order_by(Membership.id.desc())))
    with statements(db) as seen:
        ids, pages = walk(admin_client, "/admin/memberships", "membership")
    assert ids == every and pages == 3
    # Each page: the logged-in user, the unread count, the page with its credits, its
    # students and its coaches; never one per membership.
    assert len(seen) <= 3 * 5


def test_a_user_s_memberships(admin_client, memberships, db):
    from offers.models import Membership

    ana = db.session.get(Membership, memberships["ana"])
    page = admin_client.get(f"/admin/memberships?user_id={ana.student_id}").get_data(as_text=True)
    assert ids_on(page, "membership") == [ana.id] and 'id="party-filter"' in page


# --- a membership's page ---------------------------------------------------------------------


def test_a_membership_s_page_shows_its_terms_periods_and_audit_trail(
        admin_client, memberships, db, app):
    from audit.services import record
    from offers.models import Membership

    ana = db.session.get(Membership, memberships["ana"])
    record("membership.active", ana, actor_label="stripe",
           before={"status": "joining"}, after={"status": "active"})
    db.session.commit()
    page = unescape(admin_client.get(f"/admin/memberships/{ana.id}").get_data(as_text=True))
    assert "Monthly coaching" in page and "4 × 45 min a month" in page
    assert "$160.00 a month" in page and "sub_ana" in page and "price_usd" in page
    assert 'id="credits-now">4<' in page and 'id="invoices-paid">3<' in page
    grants = page[page.index('id="grant-rows"'):]
    assert [g for g in re.findall(r"<code>(in_ana_\d)</code>", grants)] == [
        "in_ana_3", "in_ana_2", "in_ana_1"]
    assert "05 May 2024" in grants and "05 Jun 2024" in grants and "$160.00" in grants
    trail = page[page.index('id="membership-audit"'):]
    assert 'data-action="membership.active"' in trail and f"Membership #{ana.id}" in trail
    assert 'id="membership-actions"' in page
    assert 'id="period-end-outcome">renews<' in page

    cleo = unescape(admin_client.get(f"/admin/memberships/{memberships['cleo']}")
                    .get_data(as_text=True))
    assert 'id="cancel-at-period-end"' in cleo and 'id="period-end-outcome">ends<' in cleo
    fay = unescape(admin_client.get(f"/admin/memberships/{memberships['fay']}")
                   .get_data(as_text=True))
    assert 'id="ended-at"' in fay and "15 Apr 2024" in fay
    gus = admin_client.get(f"/admin/memberships/{memberships['gus']}").get_data(as_text=True)
    assert "No invoice paid yet." in gus and "Checkout not finished" in gus
    assert admin_client.get("/admin/memberships/999999").status_code == 404


@pytest.mark.parametrize("role", ["student", "coach", None])
def test_memberships_are_404_to_everyone_but_admins(client, make_user, memberships, role):
    if role:
        login(client, make_user(role))
    assert client.get("/admin/memberships").status_code == 404
    assert client.get(f"/admin/memberships/{memberships['ana']}").status_code == 404


# --- the dashboard ------------------------------------------------------------------------------


def test_the_dashboard_shows_mrr_members_and_churn(admin_client, memberships):
    page = unescape(admin_client.get("/admin/payments").get_data(as_text=True))
    section = page[page.index('id="memberships"'):]
    assert re.findall(r'id="mrr-(\w+)"', section) == ["jpy", "usd"]
    assert 'data-mrr="58833">$588.33<' in section
    assert 'data-mrr="26009">¥26,009<' in section
    assert "from 4 active or past-due memberships" in section  # usd
    assert "from 2 active or past-due memberships" in section  # jpy
    rows = dict(re.findall(r'<tr data-month="([\d-]+)"[^>]*>(.*?)</tr>', section, re.S))
    assert list(rows)[0] == "2024-05" and list(rows)[-1] == "2023-06" and len(rows) == 12

    def figures(month: str) -> tuple[str, str, str, str]:
        row = rows[month]
        numbers = [re.search(rf'data-{name}="(\d+)"', row).group(1)
                   for name in ("at-start", "joined", "left")]
        churn = re.search(r"data-churn>(.*?)</td>", row).group(1).replace("\xa0", " ")
        return (*numbers, churn)

    assert figures("2023-06") == ("1", "0", "0", "0.0 %")
    assert figures("2023-09") == ("1", "0", "1", "100.0 %")
    assert figures("2023-10") == ("0", "0", "0", "—")
    assert figures("2023-12") == ("0", "1", "0", "—")
    assert figures("2024-03") == ("1", "1", "0", "0.0 %")
    assert figures("2024-04") == ("2", "2", "1", "50.0 %")
    assert figures("2024-05") == ("3", "3", "0", "0.0 %")


def test_the_figures_are_a_few_statements_and_empty_without_memberships(db, clock, memberships):
    from admin.membership_figures import membership_figures

    with statements(db) as seen:
        figures = membership_figures(NOW.date())
    assert len(seen) == 4
    assert [(r.currency, r.monthly, r.billed) for r in figures.mrr] == [
        ("jpy", 26009, 2), ("usd", 58833, 4)]
    assert [m.churn for m in figures.months][3:5] == [1.0, None]


def test_an_empty_dashboard_says_no_membership_is_billed(admin_client):
    page = admin_client.get("/admin/payments").get_data(as_text=True)
    assert 'id="no-mrr"' in page and page.count('data-joined="0"') == 12


# --- the demo ------------------------------------------------------------------------------------


def test_the_demo_s_memberships_are_on_sale_and_in_the_console(
        runner, client, admin_client, db, clock):
    from offers.models import Membership, MembershipStatus

    assert runner.invoke(args=["demo-data"]).exit_code == 0
    assert runner.invoke(args=["demo-data"]).exit_code == 0  # twice: nothing new
    maya = unescape(client.get("/c/maya-lindqvist").get_data(as_text=True))
    assert "Monthly coaching" in maya and "$160.00 / month, 4 sessions" in maya
    tomas = unescape(client.get("/c/tomas-ferreira").get_data(as_text=True))
    assert "¥3,000 / week, 1 session" in tomas
    statuses = sorted(s.value for s in db.session.scalars(select(Membership.status)))
    assert statuses == ["active", "active", "active", "canceled", "past_due"]
    canceled = db.session.scalar(select(Membership).filter_by(status=MembershipStatus.CANCELED))
    last_month = (clock.now().date().replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    assert canceled.ended_at.strftime("%Y-%m") == last_month
    page = unescape(admin_client.get("/admin/payments").get_data(as_text=True))
    assert 'data-mrr="32000">$320.00<' in page and 'data-mrr="26000">¥26,000<' in page

    # Each paid period is its contract, paid by its invoice's payment; the money core's
    # ledger check finds nothing wrong with them.
    from accounts.models import User
    from contracts.models import Contract
    from demo import DEMO_PASSWORD
    from offers.models import CreditGrant
    from payments.models import Payment
    from payouts import ledger

    grants = list(db.session.scalars(select(CreditGrant)))
    assert len(grants) == 13 and all(g.contract_id for g in grants)
    for grant in grants:
        period = db.session.get(Contract, grant.contract_id)
        (payment,) = db.session.scalars(select(Payment).filter_by(contract_id=period.id))
        assert (period.membership_id, period.period_start, period.session_count) == (
            grant.membership_id, grant.period_start, grant.sessions)
        assert (payment.stripe_invoice_id, payment.amount, payment.status.value) == (
            grant.stripe_invoice_id, grant.amount_paid, "succeeded")
        assert period.amount_paid == period.total_amount == grant.amount_paid
    assert ledger.check() == []
    ana = db.session.scalar(select(User).filter_by(email="ana@coachpact.test"))
    monthly = db.session.scalar(select(Membership).filter_by(
        student_id=ana.id, title="Monthly coaching"))
    running = db.session.scalar(select(Contract).where(
        Contract.membership_id == monthly.id).order_by(Contract.period_start.desc()).limit(1))
    client.submit("/auth/logout")
    login(client, ana, DEMO_PASSWORD)
    mine = client.get(f"/memberships/{monthly.id}").get_data(as_text=True)
    assert f'id="book-{running.id}">Book a session</a>' in mine
    assert client.get(f"/contracts/{running.id}/schedule").status_code == 200
