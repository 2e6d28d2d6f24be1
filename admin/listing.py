"""What the console's lists share: keyset pages and reading filters from the query string.

Every list shows the newest rows first, by id, and pages with `?after=<id>`:
the next page starts just below the last id shown, through the primary key's
index. An OFFSET page would cost every row it skips, and would repeat or skip
rows when new ones arrive between two clicks; a keyset page does neither.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, select

from extensions import db

PAGE_SIZE = 50

T = TypeVar("T")
E = TypeVar("E", bound=enum.Enum)


@dataclass(frozen=True)
class Page(Generic[T]):
    rows: list[T]
    next_after: int | None  # the `after` of the next page; None on the last page


def keyset_page(
    query: Select[Any], id_column: ColumnElement[int], after: int | None, size: int = PAGE_SIZE
) -> Page[Any]:
    """One page of `query`, newest id first, starting below `after`.

    A query of one entity gives the entities; a query of several columns gives rows
    whose first element is the entity that carries the id.
    """
    if after is not None:
        query = query.where(id_column < after)
    # One row more than the page tells whether a next page exists, without a count.
    query = query.order_by(id_column.desc()).limit(size + 1)
    result = db.session.execute(query)
    rows = list(result.scalars() if len(query.column_descriptions) == 1 else result.all())
    if len(rows) <= size:
        return Page(rows, None)
    rows = rows[:size]
    last = rows[-1] if len(query.column_descriptions) == 1 else rows[-1][0]
    return Page(rows, last.id)


# --- filters from the query string -----------------------------------------------------
# A value that does not parse is treated as absent: these are links and GET forms,
# and a hand-edited address should show the unfiltered list rather than an error.


def text_arg(args: Mapping[str, str], name: str, limit: int = 200) -> str | None:
    value = (args.get(name) or "").strip()[:limit]
    return value or None


def int_arg(args: Mapping[str, str], name: str) -> int | None:
    value = (args.get(name) or "").strip().lstrip("#")
    # Bounded so that a huge number cannot overflow a database integer.
    return int(value) if value.isdigit() and len(value) <= 18 else None


def date_arg(args: Mapping[str, str], name: str) -> date | None:
    try:
        return date.fromisoformat((args.get(name) or "").strip())
    except ValueError:
        return None


def enum_arg(args: Mapping[str, str], name: str, enum_cls: type[E]) -> E | None:
    try:
        return enum_cls((args.get(name) or "").strip())
    except ValueError:
        return None


def query_args(**values: Any) -> dict[str, str]:
    """The non-empty filter values as query-string arguments (for the next page's link)."""
    shown: dict[str, str] = {}
    for name, value in values.items():
        if value is None or value == "":
            continue
        if isinstance(value, enum.Enum):
            value = value.value
        elif isinstance(value, date):
            value = value.isoformat()
        shown[name] = str(value)
    return shown


def distinct_values(column: ColumnElement[str]) -> list[str]:
    """The values a column holds, sorted: the choices of a filter's select."""
    return list(db.session.scalars(select(column).distinct().order_by(column)))
