"""The payments dashboard: figures per currency over a range of UTC days, and a daily chart.

The chart is an SVG drawn here on the server (no script, nothing from a CDN,
nothing the CSP blocks); `admin.charts.volume_chart` works out its geometry so
the template only places what it is given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from flask import render_template, request

from admin import analytics, payout_views, plan_views, queries_refunds
from admin.charts import volume_chart
from admin.membership_figures import membership_figures
from admin.views import bp
from payments.models import PaymentRecordStatus

PRESETS = {
    "today": "Today",
    "7d": "7 days",
    "30d": "30 days",
    "quarter": "This quarter",
    "custom": "Custom",
}
DEFAULT_PRESET = "30d"
MAX_DAYS = 366  # a year (and a leap day) of bars is as much as the chart can show


@dataclass(frozen=True)
class Period:
    """The days shown, `start`..`end` included, and why the asked-for range was not used."""

    preset: str
    start: date
    end: date
    error: str | None = None

    @property
    def label(self) -> str:
        """"10 May 2024", or "1 Apr 2024 – 10 May 2024"."""
        if self.start == self.end:
            return _long(self.start)
        return f"{_long(self.start)} – {_long(self.end)}"

    @property
    def query(self) -> dict[str, str]:
        """The query arguments that show this range again (for the chart's currency links)."""
        if self.preset == "custom":
            return {"range": "custom", "start": self.start.isoformat(), "end": self.end.isoformat()}
        return {"range": self.preset}


def _long(day: date) -> str:
    return f"{day.day} {day:%b %Y}"


def period_from(args: Mapping[str, str], today: date) -> Period:
    """The range the query string asks for; on any mistake, 30 days and an error to show."""
    preset = args.get("range", DEFAULT_PRESET)
    if preset == "custom":
        return _custom(args.get("start", ""), args.get("end", ""), today)
    if preset not in PRESETS:
        return _fallback(today, f"There is no range called “{preset}”.")
    if preset == "today":
        return Period(preset, today, today)
    if preset == "7d":
        return Period(preset, today - timedelta(days=6), today)
    if preset == "quarter":
        first_month = 3 * ((today.month - 1) // 3) + 1
        return Period(preset, today.replace(month=first_month, day=1), today)
    return Period(DEFAULT_PRESET, today - timedelta(days=29), today)


def _custom(start_text: str, end_text: str, today: date) -> Period:
    if not (start_text and end_text):
        return _fallback(today, "A custom range needs a start and an end date.")
    start, end = _parse_date(start_text), _parse_date(end_text)
    if start is None or end is None:
        wrong = start_text if start is None else end_text
        return _fallback(today, f"“{wrong[:40]}” is not a date: use the form YYYY-MM-DD.")
    if end < start:
        return _fallback(today, "The end date is before the start date.")
    if start > today:
        return _fallback(today, "The range starts after today: there is nothing to show yet.")
    end = min(end, today)  # days to come have no payments yet
    if (end - start).days + 1 > MAX_DAYS:
        return _fallback(today, f"Choose a range of at most {MAX_DAYS} days.")
    return Period("custom", start, end)


def _parse_date(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _fallback(today: date, error: str) -> Period:
    return Period(DEFAULT_PRESET, today - timedelta(days=29), today, f"{error} Showing 30 days.")


def chart_currency(figures: analytics.Dashboard, asked: str | None) -> str | None:
    """The currency the chart shows: the one asked for if the range has it, else the busiest."""
    codes = [c.currency for c in figures.currencies]
    if asked in codes:
        return asked
    return codes[0] if codes else None


# --- the chart's geometry ------------------------------------------------------------


def age_text(age: timedelta | None) -> str | None:
    """"12 min", "3 h 5 min", "2 d 4 h": how long the oldest event has waited."""
    if age is None:
        return None
    minutes = int(age.total_seconds() // 60)
    if minutes < 1:
        return "under a minute"
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


# --- the page ---------------------------------------------------------------------------


@bp.get("/payments")
def dashboard() -> str:
    period = period_from(request.args, analytics.today())
    figures = analytics.dashboard(period.start, period.end)
    currency = chart_currency(figures, request.args.get("chart_currency"))
    return render_template(
        "admin/dashboard.html",
        period=period,
        presets=PRESETS,
        figures=figures,
        sources=figures.sources,
        statuses=list(PaymentRecordStatus),
        chart=volume_chart(figures.series[currency], currency) if currency else None,
        inbox_age=age_text(figures.inbox.age),
        money_back=queries_refunds.attention(),
        plans=plan_views.attention(),
        ledger=payout_views.ledger_check(),
        memberships=membership_figures(),
    )
