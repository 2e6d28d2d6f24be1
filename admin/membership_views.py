"""Memberships as the console sees them: every one, searchable, with its file."""

from __future__ import annotations

from flask import render_template, request

from accounts.models import User
from admin import queries_memberships
from admin.listing import int_arg
from admin.views import bp
from extensions import db
from offers.memberships import PERIOD_WORDS
from offers.models import Membership, MembershipStatus


@bp.get("/memberships")
def memberships() -> str:
    filters = queries_memberships.MembershipFilters.from_args(request.args)
    after = int_arg(request.args, "after")
    return render_template(
        "admin/memberships.html",
        filters=filters,
        page=queries_memberships.membership_page(filters, after),
        after=after,
        party=db.session.get(User, filters.user_id) if filters.user_id else None,
        statuses=list(MembershipStatus),
        period_words=PERIOD_WORDS,
    )


@bp.get("/memberships/<int:membership_id>")
def membership_detail(membership_id: int) -> str:
    membership = db.get_or_404(Membership, membership_id)
    return render_template(
        "admin/membership_detail.html",
        file=queries_memberships.membership_file(membership),
        period_words=PERIOD_WORDS,
    )
