"""Numbered pages of a query (LIMIT/OFFSET in SQL) that never fail on what a user types."""

from __future__ import annotations

from typing import Any

from flask_sqlalchemy.pagination import Pagination
from sqlalchemy import Select

from extensions import db

# Far beyond any real list; keeps OFFSET within the database's integers whatever is typed.
MAX_PAGE = 100_000


def page_number(page: int) -> int:
    """`page` within 1..MAX_PAGE: an edited `?page=0` or `?page=10**30` is still a page."""
    return min(max(page, 1), MAX_PAGE)


def page_of(query: Select[Any], page: int, per_page: int) -> Pagination:
    """One page of `query`; below 1 is the first page, past the end the last one, so an
    edited or stale `?page=` never fails."""
    page = page_number(page)
    found = db.paginate(query, page=page, per_page=per_page, error_out=False)
    if found.pages and page > found.pages:
        found = db.paginate(query, page=found.pages, per_page=per_page, error_out=False)
    return found
