"""The dashboard's daily chart, as geometry for an SVG drawn on the server.

Bars for the day's volume in one currency, a line for the day's success rate;
the template only places what is computed here (no arithmetic in Jinja, no
script in the page).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

from babel.numbers import format_compact_currency

from admin import analytics
from contracts.money import format_money, minor_factor


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    title: str  # the tooltip, and what a screen reader finds on the bar


@dataclass(frozen=True)
class Tick:
    at: float  # y for the axes' ticks, x for the days
    label: str


@dataclass(frozen=True)
class Dot:
    x: float
    y: float
    title: str


@dataclass(frozen=True)
class Chart:
    currency: str
    width: int
    height: int
    left: float  # the plot area
    right: float
    top: float
    bottom: float
    money_label_x: float  # where the axes' labels go
    rate_label_x: float
    rate_title_x: float  # the right axis's title ends at the chart's edge
    day_label_y: float
    axis_title_y: float
    bars: list[Bar]
    rate_lines: list[str]  # polyline points, broken where a day had no attempt
    rate_dots: list[Dot]
    money_ticks: list[Tick]
    rate_ticks: list[Tick]
    day_ticks: list[Tick]
    description: str  # the aria-label


WIDTH, HEIGHT = 760, 280
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 64, 52, 28, 30
LABEL_GAP = 8
MONEY_TICKS = 4
MAX_BAR_WIDTH = 48  # a range of a day or two would otherwise draw slabs
MAX_DAY_LABELS = 10


def volume_chart(points: list[analytics.DayPoint], currency: str) -> Chart:
    """Bars for each day's gross in `currency`, and a line for its success rate (0–100 %)."""
    left, right = MARGIN_LEFT, WIDTH - MARGIN_RIGHT
    top, bottom = MARGIN_TOP, HEIGHT - MARGIN_BOTTOM
    plot_height = bottom - top
    step = _nice_step(max((p.gross for p in points), default=0), currency)
    scale_max = step * MONEY_TICKS
    slot = (right - left) / max(len(points), 1)
    bar_width = min(max(slot * 0.7, 1.0), MAX_BAR_WIDTH)

    bars, dots, lines, line = [], [], [], []
    for index, point in enumerate(points):
        middle = left + slot * (index + 0.5)
        height = plot_height * point.gross / scale_max
        bars.append(
            Bar(
                x=_r(middle - bar_width / 2),
                y=_r(bottom - height),
                width=_r(bar_width),
                height=_r(height),
                title=_day_title(point, currency),
            )
        )
        rate = point.success_rate
        if rate is None:  # no attempt that day: the line breaks rather than dropping to 0
            if line:
                lines.append(" ".join(line))
            line = []
            continue
        y = _r(bottom - plot_height * rate)
        line.append(f"{_r(middle)},{y}")
        dots.append(Dot(_r(middle), y, f"{_label(point.day)}: {rate:.0%} of attempts paid"))
    if line:
        lines.append(" ".join(line))

    every = math.ceil(len(points) / MAX_DAY_LABELS) or 1
    return Chart(
        currency=currency,
        width=WIDTH,
        height=HEIGHT,
        left=left,
        right=right,
        top=top,
        bottom=bottom,
        money_label_x=left - LABEL_GAP,
        rate_label_x=right + LABEL_GAP,
        rate_title_x=WIDTH - 2,
        day_label_y=bottom + 2 * LABEL_GAP + 4,
        axis_title_y=top - 2 * LABEL_GAP,
        bars=bars,
        rate_lines=lines,
        rate_dots=dots,
        money_ticks=[
            Tick(_r(bottom - plot_height * n / MONEY_TICKS), _axis_money(step * n, currency))
            for n in range(MONEY_TICKS + 1)
        ],
        rate_ticks=[Tick(_r(bottom - plot_height * n / 100), f"{n} %") for n in (0, 50, 100)],
        day_ticks=[
            Tick(_r(left + slot * (index + 0.5)), _label(point.day))
            for index, point in enumerate(points)
            if index % every == 0
        ],
        description=_describe(points, currency),
    )


def _nice_step(largest: int, currency: str) -> int:
    """A round tick step in minor units, so that `MONEY_TICKS` steps cover `largest`.

    1, 2, 2.5 or 5 × 10ⁿ, a whole number of minor units and at least one major unit.
    """
    wanted = max(largest / MONEY_TICKS, minor_factor(currency))
    power = 10 ** math.floor(math.log10(wanted))
    return next(
        int(m * power) for m in (1, 2, 2.5, 5, 10) if m * power >= wanted and m * power % 1 == 0
    )


def _axis_money(amount: int, currency: str) -> str:
    value = amount / minor_factor(currency)
    return format_compact_currency(value, currency.upper(), locale="en_US", fraction_digits=1)


def _label(day: date) -> str:
    return f"{day.day} {day:%b}"


def _day_title(point: analytics.DayPoint, currency: str) -> str:
    paid = f"{point.succeeded} paid, {point.failed} failed"
    return f"{_label(point.day)}: {format_money(point.gross, currency)} ({paid})"


def _describe(points: list[analytics.DayPoint], currency: str) -> str:
    total = sum(p.gross for p in points)
    busiest = max(points, key=lambda p: p.gross, default=None)
    text = (
        f"Daily gross volume in {currency.upper()} over {len(points)} days, "
        f"{format_money(total, currency)} in all"
    )
    if busiest and busiest.gross:
        text += f"; the busiest day was {_label(busiest.day)} with "
        text += format_money(busiest.gross, currency)
    return text + ". The line is each day's payment success rate."


def _r(value: float) -> float:
    return round(value, 1)


