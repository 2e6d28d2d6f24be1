"""The audit log: every recorded action, by whom, on what, and what it changed."""

from __future__ import annotations

from flask import render_template, request
from flask_login import current_user

from admin.listing import int_arg
from admin.queries_audit import AuditFilters, audit_choices, audit_page
from admin.views import bp


@bp.get("/audit")
def audit() -> str:
    filters = AuditFilters.from_args(request.args)
    after = int_arg(request.args, "after")
    return render_template(
        "admin/audit.html",
        filters=filters,
        page=audit_page(filters, after, current_user.timezone),
        after=after,
        choices=audit_choices(),
    )
