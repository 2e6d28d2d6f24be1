"""The payments dashboard: figures per currency, the rollup and its agreement with live figures.

The data set (clock frozen at 2024-05-10 12:00 UTC; usd contracts cost $200.00
with a $20.00 fee, the jpy one ¥15,000 with a ¥1,500 fee):

    day     UTC time         currency  status               notes
    05-07   23:59:59         usd       succeeded            the day before the range
    05-08   10:00            usd       succeeded            held for review
    05-08   23:59:59.999999  usd       failed               "Your card was declined."
    05-09   00:00:00         usd       partially_refunded   $50.00 back
    05-09   08:00            usd       refunded             a void duplicate, all back
    05-09   12:00            jpy       failed               "Your card has insufficient funds."
    05-09   13:00            usd       expired
    05-09   14:00            usd       failed               "Your card was declined."
    05-09   23:30            jpy       succeeded
    05-10   00:00:01         jpy       succeeded            today
    05-10   09:00            usd       failed               "Your card has expired."
    05-10   11:00            usd       pending
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from html import unescape

import pytest
from sqlalchemy import select

NOW = datetime(2024, 5, 10, 12, 0, tzinfo=UTC)
DECLINED = "Your card was declined."
NO_FUNDS = "Your card has insufficient funds."
EXPIRED_CARD = "Your card has expired."


@pytest.fixture
def app_overrides():
    # A round fee, so the expected fees below can be worked out by hand.
    return {"PLATFORM_FEE_PERCENT": Decimal("10"), "PLATFORM_FEE_MINIMUM": Decimal("1")}


@pytest.fixture
def contracts(app, make_user, make_proposal, clock):
    """Accepted contracts: usd, jpy and a usd one in dispute; returns their ids."""
    from accounts.models import User
    from contracts.models import Contract, ContractStatus
    from contracts.services import accept_proposal
    from extensions import db

    clock.freeze(NOW - timedelta(days=30))
    coach, student = make_user("coach"), make_user("student")
    terms = {
        "usd": {"session_count": 4, "price_per_session": 5000, "currency": "usd"},
        "jpy": {"session_count": 3, "price_per_session": 5000, "currency": "jpy"},
        "disputed": {"session_count": 2, "price_per_session": 7500, "currency": "usd"},
    }
    proposals = {
        key: make_proposal(coach, student, title=f"Coaching {key}", **values)
        for key, values in terms.items()
    }
    ids = {}
    with app.app_context():
        for key, proposal_id in proposals.items():
            ids[key] = accept_proposal(proposal_id, db.session.get(User, student.id)).id
        # A dispute arrives on a paid contract; how it gets there is tested elsewhere.
        db.session.get(Contract, ids["disputed"]).status = ContractStatus.DISPUTED
        db.session.commit()
        usd, jpy = db.session.get(Contract, ids["usd"]), db.session.get(Contract, ids["jpy"])
        assert (usd.total_amount, usd.platform_fee, usd.coach_earning) == (20000, 2000, 18000)
        assert (jpy.total_amount, jpy.platform_fee, jpy.coach_earning) == (15000, 1500, 13500)
    clock.freeze(NOW)
    return ids


def at(day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    return datetime(2024, 5, day, hour, minute, second, micro, tzinfo=UTC)


@pytest.fixture
def payments(app, contracts):
    """The payments of the table above, and the inbox's events; returns the payments' ids."""
    from extensions import db
    from payments.models import (
        EventStatus,
        Payment,
        PaymentRecordStatus,
        VoidReason,
        WebhookEvent,
    )

    s = PaymentRecordStatus
    rows = {
        "before": ("usd", s.SUCCEEDED, at(7, 23, 59, 59), {}),
        "held": ("usd", s.SUCCEEDED, at(8, 10), {"review_reason": "Amount differs"}),
        "declined_late": ("usd", s.FAILED, at(8, 23, 59, 59, 999999), {"failure_reason": DECLINED}),
        "partial": ("usd", s.PARTIALLY_REFUNDED, at(9), {"amount_refunded": 5000}),
        "duplicate": (
            "usd",
            s.REFUNDED,
            at(9, 8),
            {"amount_refunded": 20000, "void_reason": VoidReason.DUPLICATE},
        ),
        "no_funds": ("jpy", s.FAILED, at(9, 12), {"failure_reason": NO_FUNDS}),
        "expired": ("usd", s.EXPIRED, at(9, 13), {}),
        "declined": ("usd", s.FAILED, at(9, 14), {"failure_reason": DECLINED}),
        "yen_late": ("jpy", s.SUCCEEDED, at(9, 23, 30), {}),
        "yen_today": ("jpy", s.SUCCEEDED, at(10, 0, 0, 1), {}),
        "expired_card": ("usd", s.FAILED, at(10, 9), {"failure_reason": EXPIRED_CARD}),
        "pending": ("usd", s.PENDING, at(10, 11), {}),
    }
    totals = {"usd": 20000, "jpy": 15000}
    ids = {}
    with app.app_context():
        for key, (currency, status, created_at, extra) in rows.items():
            payment = Payment(
                contract_id=contracts[currency],
                amount=totals[currency],
                currency=currency,
                status=status,
                created_at=created_at,
                **extra,
            )
            db.session.add(payment)
            db.session.flush()
            ids[key] = payment.id
        for n, (status, minutes_ago) in enumerate(
            [
                (EventStatus.RECEIVED, 30),
                (EventStatus.RECEIVED, 5),
                (EventStatus.FAILED, 600),
                (EventStatus.PROCESSED, 900),
            ]
        ):
            received_at = NOW - timedelta(minutes=minutes_ago)
            db.session.add(
                WebhookEvent(
                    stripe_event_id=f"evt_dashboard_{n}",
                    type="checkout.session.completed",
                    payload="{}",
                    status=status,
                    received_at=received_at,
                    next_attempt_at=received_at,
                )
            )
        db.session.commit()
    return ids


# What the range 05-08..05-10 comes to, worked out by hand from the table.
USD = {
    "gross": 3 * 20000,  # held, partial, duplicate: paid once
    "refunded": 5000 + 20000,
    "net": 60000 - 25000,
    "fees": 2 * 2000,  # not the void duplicate's
    "earnings": 2 * 18000,
    "succeeded": 3,
    "failed": 3,
    "status_counts": {
        "succeeded": 1,
        "partially_refunded": 1,
        "refunded": 1,
        "failed": 3,
        "expired": 1,
        "pending": 1,
    },
}
JPY = {
    "gross": 2 * 15000,
    "refunded": 0,
    "net": 30000,
    "fees": 2 * 1500,
    "earnings": 2 * 13500,
    "succeeded": 2,
    "failed": 1,
    "status_counts": {"succeeded": 2, "failed": 1},
}


def figures_of(currency_figures) -> dict:
    return {
        "gross": currency_figures.gross,
        "refunded": currency_figures.refunded,
        "net": currency_figures.net,
        "fees": currency_figures.fees,
        "earnings": currency_figures.earnings,
        "succeeded": currency_figures.succeeded,
        "failed": currency_figures.failed,
        "status_counts": dict(currency_figures.status_counts),
    }


# --- the service ----------------------------------------------------------------------


def test_figures_by_day_cut_at_utc_midnight(db, payments):
    from admin.analytics import figures_by_day

    days = {(f.day, f.currency): f for f in figures_by_day(date(2024, 5, 7), date(2024, 5, 10))}
    assert sorted(days) == [
        (date(2024, 5, 7), "usd"),
        (date(2024, 5, 8), "usd"),
        (date(2024, 5, 9), "jpy"),
        (date(2024, 5, 9), "usd"),
        (date(2024, 5, 10), "jpy"),
        (date(2024, 5, 10), "usd"),
    ]
    # 23:59:59.999999 is still the 8th; 00:00:00 is already the 9th.
    assert days[date(2024, 5, 8), "usd"].status_counts == {"succeeded": 1, "failed": 1}
    assert days[date(2024, 5, 9), "usd"].status_counts == {
        "partially_refunded": 1,
        "refunded": 1,
        "expired": 1,
        "failed": 1,
    }
    ninth = days[date(2024, 5, 9), "usd"]
    assert (ninth.gross, ninth.refunded, ninth.fees, ninth.earnings) == (40000, 25000, 2000, 18000)
    assert (days[date(2024, 5, 10), "jpy"].gross, days[date(2024, 5, 10), "jpy"].succeeded) == (
        15000,
        1,
    )


def test_dashboard_figures_per_currency(db, payments):
    from admin.analytics import dashboard

    figures = dashboard(date(2024, 5, 8), date(2024, 5, 10))

    assert [c.currency for c in figures.currencies] == ["usd", "jpy"]  # most payments first
    assert figures_of(figures.currency("usd")) == USD
    assert figures_of(figures.currency("jpy")) == JPY
    assert figures.currency("usd").success_rate == 3 / 6
    assert figures.currency("jpy").success_rate == 2 / 3
    assert figures.success_rate == 5 / 9  # counts may be added across currencies
    assert figures.failure_reasons == [(DECLINED, 2), (EXPIRED_CARD, 1), (NO_FUNDS, 1)]
    assert figures.held_for_review == 1
    assert figures.open_disputes == 1 and [c.title for c in figures.disputes] == [
        "Coaching disputed"
    ]
    assert (figures.inbox.waiting, figures.inbox.failed) == (2, 1)
    assert figures.inbox.oldest_waiting_at == NOW - timedelta(minutes=30)
    assert figures.inbox.age == timedelta(minutes=30)

    usd_days = figures.series["usd"]
    assert [p.day for p in usd_days] == [date(2024, 5, d) for d in (8, 9, 10)]
    assert [(p.gross, p.succeeded, p.failed) for p in usd_days] == [
        (20000, 1, 1),
        (40000, 2, 1),
        (0, 0, 1),
    ]
    assert [p.success_rate for p in usd_days] == [0.5, 2 / 3, 0.0]
    assert [p.gross for p in figures.series["jpy"]] == [0, 15000, 15000]
    assert figures.series["jpy"][0].success_rate is None  # no attempt at all that day


def test_a_range_of_one_day_ends_at_utc_midnight(db, payments):
    from admin.analytics import dashboard

    ninth = dashboard(date(2024, 5, 9), date(2024, 5, 9))
    usd, jpy = ninth.currency("usd"), ninth.currency("jpy")
    # The 00:00:00 payment is in; the 23:59:59.999999 failure of the 8th is not.
    assert (usd.gross, usd.refunded, usd.fees, usd.succeeded, usd.failed) == (
        40000,
        25000,
        2000,
        2,
        1,
    )
    assert (jpy.gross, jpy.succeeded, jpy.failed, jpy.success_rate) == (15000, 1, 1, 0.5)
    assert ninth.failure_reasons == [(NO_FUNDS, 1), (DECLINED, 1)]  # a tie: by reason

    eighth = dashboard(date(2024, 5, 8), date(2024, 5, 8))
    assert [c.currency for c in eighth.currencies] == ["usd"]  # the 05-07 payment is out
    assert (eighth.currency("usd").gross, eighth.currency("usd").success_rate) == (20000, 0.5)
    assert eighth.failure_reasons == [(DECLINED, 1)]

    empty = dashboard(date(2024, 4, 1), date(2024, 4, 30))
    assert empty.currencies == [] and empty.success_rate is None and empty.failure_reasons == []


# --- the rollup -------------------------------------------------------------------------


def stored_rows(db) -> list[tuple]:
    from admin.models import DailyPaymentStats

    db.session.expire_all()
    return [
        (r.day, r.currency, r.status_counts, r.succeeded, r.failed, r.gross, r.refunded, r.fees,
         r.earnings)
        for r in db.session.scalars(
            select(DailyPaymentStats).order_by(DailyPaymentStats.day, DailyPaymentStats.currency)
        )
    ]


def test_rollup_and_live_figures_agree(db, payments):
    from admin.analytics import dashboard, figures_by_day, rollup

    start, end = date(2024, 5, 1), date(2024, 5, 10)
    live = dashboard(start, end)
    assert live.stored_days is None  # nothing rolled up yet: every day is computed live

    assert rollup(start, end) == 4  # closed days only: today stays live
    db.session.commit()
    rows = stored_rows(db)
    assert [(r[0], r[1]) for r in rows] == [
        (date(2024, 5, 7), "usd"),
        (date(2024, 5, 8), "usd"),
        (date(2024, 5, 9), "jpy"),
        (date(2024, 5, 9), "usd"),
    ]
    assert rows == [
        (f.day, f.currency, f.status_counts, f.succeeded, f.failed, f.gross, f.refunded, f.fees,
         f.earnings)
        for f in sorted(figures_by_day(start, end - timedelta(days=1)),
                        key=lambda f: (f.day, f.currency))
    ]

    stored = dashboard(start, end)
    assert stored.stored_days == (date(2024, 5, 7), date(2024, 5, 9))
    assert [figures_of(c) for c in stored.currencies] == [figures_of(c) for c in live.currencies]
    assert stored.series == live.series
    assert stored.failure_reasons == live.failure_reasons


def test_closed_days_are_read_from_the_rollup_and_today_is_live(db, payments):
    from admin.analytics import dashboard, rollup
    from admin.models import DailyPaymentStats
    from payments.models import Payment, PaymentRecordStatus

    rollup(date(2024, 5, 8), date(2024, 5, 10))
    db.session.commit()
    # Proof of where the figures come from: a stored row changed by hand shows,
    # and a payment made today after the rollup shows too.
    db.session.get(DailyPaymentStats, (date(2024, 5, 8), "usd", 0)).gross = 123
    db.session.add(
        Payment(
            contract_id=db.session.get(Payment, payments["pending"]).contract_id,
            amount=20000,
            currency="usd",
            status=PaymentRecordStatus.SUCCEEDED,
            created_at=NOW - timedelta(minutes=1),
        )
    )
    db.session.commit()

    figures = dashboard(date(2024, 5, 8), date(2024, 5, 10))
    assert [p.gross for p in figures.series["usd"]] == [123, 40000, 20000]
    assert figures.currency("usd").gross == 123 + 40000 + 20000


def test_rollup_twice_gives_the_same_rows_and_a_rerun_takes_changes(db, payments):
    from admin.analytics import rollup
    from payments.models import Payment, PaymentRecordStatus

    assert rollup(date(2024, 5, 1), date(2024, 5, 10)) == 4
    db.session.commit()
    first = stored_rows(db)
    assert rollup(date(2024, 5, 1), date(2024, 5, 10)) == 4
    assert rollup(date(2024, 5, 1), date(2024, 5, 10)) == 4  # twice in one transaction too
    db.session.commit()
    assert stored_rows(db) == first

    # A refund on the 8th's payment a few days later: the day's row follows on the next run.
    held = db.session.get(Payment, payments["held"])
    held.status, held.amount_refunded = PaymentRecordStatus.REFUNDED, 20000
    db.session.commit()
    assert rollup(date(2024, 5, 8), date(2024, 5, 9)) == 1
    db.session.commit()
    eighth = next(r for r in stored_rows(db) if r[0] == date(2024, 5, 8))
    assert eighth[2] == {"refunded": 1, "failed": 1} and eighth[6] == 20000
    assert [r for r in stored_rows(db) if r[0] != date(2024, 5, 8)] == [
        r for r in first if r[0] != date(2024, 5, 8)
    ]


def test_rollup_never_freezes_today(db, payments):
    from admin.analytics import rollup

    assert rollup(date(2024, 5, 10), date(2024, 5, 20)) == 0
    assert rollup(date(2024, 5, 9), date(2024, 5, 20)) == 2
    db.session.commit()
    assert {r[0] for r in stored_rows(db)} == {date(2024, 5, 9)}


def test_the_nightly_job_rolls_up_the_last_days_and_older_days_that_changed(
    app, db, payments, clock
):
    from admin.analytics import nightly_rollup
    from payments.models import Payment, PaymentRecordStatus

    clock.freeze(datetime(2024, 5, 12, 15, 0, tzinfo=UTC))
    held = db.session.get(Payment, payments["held"])  # a payment of the 8th, refunded on the 12th
    held.status, held.amount_refunded = PaymentRecordStatus.PARTIALLY_REFUNDED, 1000
    db.session.commit()

    clock.freeze(datetime(2024, 5, 13, 0, 10, tzinfo=UTC))
    nightly_rollup()  # runs at once, as the consumer would run it at 00:10 UTC
    rows = stored_rows(db)
    # The 11th and 12th had no payments; the 8th changed; the 9th and 10th did not.
    assert [(r[0], r[1]) for r in rows] == [(date(2024, 5, 8), "usd")]
    assert rows[0][6] == 1000


def test_the_nightly_job_is_scheduled_after_midnight_utc():
    import jobs
    from admin.analytics import nightly_rollup

    def due(moment: datetime) -> set[str]:  # the queue's clock is naive UTC
        return {task.name for task in jobs.huey.read_periodic(moment)}

    assert nightly_rollup.name in due(datetime(2024, 5, 13, 0, 10))
    assert nightly_rollup.name not in due(datetime(2024, 5, 13, 0, 11))
    assert nightly_rollup.name not in due(datetime(2024, 5, 13, 1, 10))


# --- the command ------------------------------------------------------------------------


def test_the_rollup_command_backfills_closed_days(runner, db, payments):
    result = runner.invoke(args=["admin", "rollup", "--since", "2024-05-01"])
    assert result.exit_code == 0, result.output
    assert "Wrote 4 day × currency × source rows for 2024-05-01 to 2024-05-09" in result.output
    assert len(stored_rows(db)) == 4

    result = runner.invoke(
        args=["admin", "rollup", "--since", "2024-05-08", "--until", "2024-05-09"]
    )
    assert result.exit_code == 0, result.output
    assert "Wrote 1 day × currency × source rows" in result.output
    assert len(stored_rows(db)) == 4  # the 8th written again, not twice


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "2024-05-10"], "Only closed days"),
        (["--since", "2024-05-08", "--until", "2024-05-08"], "--until must be after --since"),
        (["--since", "May 8"], "Invalid value for '--since'"),
        ([], "Missing option '--since'"),
    ],
)
def test_the_rollup_command_refuses_what_it_cannot_do(runner, db, payments, args, message):
    result = runner.invoke(args=["admin", "rollup", *args])
    assert result.exit_code == 2 and message in result.output
    assert stored_rows(db) == []


# --- the page ---------------------------------------------------------------------------


def text_of(html: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"[^>]*>([^<]*)', html)
    assert match, f"no #{element_id} on the page"
    return " ".join(unescape(match.group(1)).split())


def page(client, query: str = "") -> str:
    response = client.get(f"/admin/payments{query}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_the_page_shows_the_figures_per_currency(admin_client, contracts, payments):
    html = page(admin_client, "?range=custom&start=2024-05-08&end=2024-05-10")

    assert text_of(html, "period") == "8 May 2024 – 10 May 2024"
    assert 'id="range-error"' not in html
    shown = {
        code: [text_of(html, f"{figure}-{code}") for figure in
               ("gross", "refunded", "net", "fees", "earnings", "rate")]
        for code in ("usd", "jpy")
    }
    assert shown == {
        "usd": ["$600.00", "$250.00", "$350.00", "$40.00", "$360.00", "50.0 %"],
        "jpy": ["¥30,000", "¥0", "¥30,000", "¥3,000", "¥27,000", "66.7 %"],
    }
    reasons = re.findall(r'<span class="me-auto cp-reason">([^<]+)</span>', html)
    assert reasons == [DECLINED, EXPIRED_CARD, NO_FUNDS]
    failed_row = re.search(r'<tr data-status="failed".*?</tr>', html, re.S).group(0)
    assert re.findall(r'<td class="text-end[^"]*">(\d+)</td>', failed_row) == ["3", "1", "4"]
    assert text_of(html, "open-disputes") == "1"
    assert f'<a href="/admin/contracts/{contracts["disputed"]}">Coaching disputed</a>' in html
    assert text_of(html, "held-for-review") == "1"
    assert (text_of(html, "inbox-waiting"), text_of(html, "inbox-failed")) == ("2", "1")
    assert text_of(html, "inbox-age") == "Oldest waiting: 30 min"
    assert 'href="/admin/reviews"' in html and 'href="/admin/events"' in html


def test_the_page_answers_an_admin_with_30_days_by_default(admin_client, payments):
    html = page(admin_client)
    assert text_of(html, "period") == "11 Apr 2024 – 10 May 2024"
    assert 'aria-current="page" href="/admin/payments?range=30d"' in html
    assert text_of(html, "gross-usd") == "$800.00"  # the 7th's payment is in this time


@pytest.mark.parametrize(
    ("preset", "period", "usd_gross"),
    [
        ("today", "10 May 2024", "$0.00"),
        ("7d", "4 May 2024 – 10 May 2024", "$800.00"),
        ("quarter", "1 Apr 2024 – 10 May 2024", "$800.00"),
    ],
)
def test_the_presets(admin_client, payments, preset, period, usd_gross):
    html = page(admin_client, f"?range={preset}")
    assert text_of(html, "period") == period
    assert text_of(html, "gross-usd") == usd_gross


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("?range=custom&start=2024-13-01&end=2024-05-10", "“2024-13-01” is not a date"),
        ("?range=custom&start=2024-05-01&end=soon", "“soon” is not a date"),
        ("?range=custom&start=2024-05-01", "needs a start and an end date"),
        ("?range=custom&start=2024-05-09&end=2024-05-01", "The end date is before the start"),
        ("?range=custom&start=2024-06-01&end=2024-06-30", "The range starts after today"),
        ("?range=custom&start=2020-01-01&end=2024-05-01", "at most 366 days"),
        ("?range=fortnight", "There is no range called “fortnight”"),
    ],
)
def test_a_bad_range_shows_an_error_and_30_days(admin_client, payments, query, error):
    html = page(admin_client, query)
    assert error in text_of(html, "range-error")
    assert "Showing 30 days." in text_of(html, "range-error")
    assert text_of(html, "period") == "11 Apr 2024 – 10 May 2024"


def test_a_custom_range_ending_after_today_stops_today(admin_client, payments):
    html = page(admin_client, "?range=custom&start=2024-05-09&end=2024-05-31")
    assert text_of(html, "period") == "9 May 2024 – 10 May 2024"
    assert 'id="range-error"' not in html


def test_the_chart_has_a_bar_per_day(admin_client, payments):
    html = page(admin_client, "?range=7d")
    svg = re.search(r'<svg id="volume-chart".*?</svg>', html, re.S).group(0)
    assert 'role="img"' in svg and 'aria-label="Daily gross volume in USD over 7 days' in svg
    assert "<title>Daily gross volume and success rate, USD</title>" in svg
    assert svg.count('class="cp-chart-bar"') == 7
    assert "<title>9 May: $400.00 (2 paid, 1 failed)</title>" in svg
    assert "<polyline" in svg and "style=" not in svg and "<script" not in svg
    # Another currency on request, keeping the range; an unknown one falls back.
    assert 'href="/admin/payments?chart_currency=jpy&amp;range=7d"' in html
    jpy = page(admin_client, "?range=7d&chart_currency=jpy")
    assert "<title>9 May: ¥15,000 (1 paid, 1 failed)</title>" in jpy
    assert "success rate, USD</title>" in page(admin_client, "?range=7d&chart_currency=eur")


def test_a_range_without_payments_says_so(admin_client, payments):
    html = page(admin_client, "?range=custom&start=2024-04-01&end=2024-04-30")
    assert 'id="no-payments"' in html and 'id="volume-chart"' not in html
    assert 'id="failure-reasons-none"' in html


def test_chart_geometry():
    from admin.analytics import DayPoint
    from admin.charts import volume_chart

    points = [
        DayPoint(date(2024, 5, 8), 20000, 1, 1),
        DayPoint(date(2024, 5, 9), 0, 0, 0),  # no attempt: the rate line breaks
        DayPoint(date(2024, 5, 10), 80000, 4, 0),
        DayPoint(date(2024, 5, 11), 40000, 1, 3),
    ]
    chart = volume_chart(points, "usd")
    assert [t.label for t in chart.money_ticks] == ["$0", "$200", "$400", "$600", "$800"]
    plot = chart.bottom - chart.top
    heights = [bar.height for bar in chart.bars]
    assert heights == [round(plot / 4, 1), 0, plot, round(plot / 2, 1)]
    assert all(round(bar.y + bar.height, 1) == chart.bottom for bar in chart.bars)
    assert len(chart.rate_lines) == 2 and len(chart.rate_dots) == 3
    assert [dot.y for dot in chart.rate_dots] == [
        round(chart.bottom - plot / 2, 1),
        chart.top,
        round(chart.bottom - plot / 4, 1),
    ]
    assert [t.label for t in chart.rate_ticks] == ["0 %", "50 %", "100 %"]
    first_bar, first_day = chart.bars[0], chart.day_ticks[0]
    assert first_day.label == "8 May"
    assert first_day.at == pytest.approx(first_bar.x + first_bar.width / 2, abs=0.1)


@pytest.mark.parametrize(
    ("largest", "currency", "labels"),
    [
        (0, "usd", ["$0", "$1", "$2", "$3", "$4"]),  # nothing paid: still a scale
        (900, "usd", ["$0", "$2.5", "$5", "$7.5", "$10"]),
        (10, "jpy", ["¥0", "¥5", "¥10", "¥15", "¥20"]),  # never ¥2.5
        (1_234_567, "jpy", ["¥0", "¥500K", "¥1M", "¥1.5M", "¥2M"]),
    ],
)
def test_the_money_axis_covers_the_largest_bar(largest, currency, labels):
    from admin.analytics import DayPoint
    from admin.charts import volume_chart

    chart = volume_chart([DayPoint(date(2024, 5, 8), largest, 1, 0)], currency)
    assert [t.label for t in chart.money_ticks] == labels
    assert chart.bars[0].y >= chart.top

