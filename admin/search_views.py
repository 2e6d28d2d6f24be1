"""The admin's one search box (in the console's header): `/admin/search?q=`."""

from __future__ import annotations

from flask import render_template, request

from admin import search
from admin.views import bp


@bp.get("/search")
def search_page() -> str:
    q = (request.args.get("q") or "").strip()
    return render_template("admin/search.html", q=q, results=search.search(q))
