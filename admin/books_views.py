"""Admin: reconciliation with Stripe's books. Each day checked, its latest run, and what
differs between the day's balance transactions at Stripe and our records; an admin can
check a day again (the daily job checks yesterday)."""

from __future__ import annotations

from datetime import date, timedelta

from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import DateField
from wtforms.validators import DataRequired, ValidationError

import clock
from admin.views import bp
from books.models import Difference
from books.reconcile import latest_run, latest_runs, reconcile_day

KIND_LABELS = {
    Difference.MISSING_OURS: "Missing on our side",
    Difference.MISSING_STRIPE: "Missing at Stripe",
    Difference.AMOUNT: "Amounts differ",
}
CATEGORY_LABELS = {
    "charge": "Charges", "refund": "Refunds", "refund_failure": "Refunds given back",
    "dispute": "Dispute withdrawals", "dispute_reversal": "Disputes won back",
    "transfer": "Transfers to coaches", "transfer_reversal": "Transfer reversals",
    "payout": "Payouts to the bank", "fee": "Stripe fees", "other_adjustment": "Adjustments",
    "topup": "Top-ups",
}


class CheckDayForm(FlaskForm):
    day = DateField("Day (UTC)", validators=[DataRequired(message="Choose a day.")])

    def validate_day(self, field: DateField) -> None:
        if field.data is not None and field.data > clock.now().date():
            raise ValidationError("That day has not happened yet.")


@bp.get("/books")
def books_page() -> str:
    form = CheckDayForm(data={"day": clock.now().date() - timedelta(days=1)})
    return render_template("admin/books.html", section="books", runs=latest_runs(),
                           form=form, categories=CATEGORY_LABELS)


@bp.post("/books/check")
def books_check() -> Response | str:
    form = CheckDayForm()
    if not form.validate():
        return render_template("admin/books.html", section="books", runs=latest_runs(),
                               form=form, categories=CATEGORY_LABELS), 400  # type: ignore[return-value]
    day = form.day.data
    assert day is not None
    run = reconcile_day(day, actor=current_user)
    if run.error:
        flash(f"{day}: Stripe could not be asked ({run.error}).", "danger")
    elif run.items:
        count = len(run.items)
        flash(f"{day}: {count} difference{'' if count == 1 else 's'} between Stripe and our "
              "records.", "warning")
    else:
        flash(f"{day}: every balance transaction matches our records.", "success")
    return redirect(url_for("admin.books_day", day=day.isoformat()))


@bp.get("/books/<day>")
def books_day(day: str) -> str:
    try:
        wanted = date.fromisoformat(day)
    except ValueError:
        abort(404)
    run = latest_run(wanted)
    if run is None:
        abort(404)
    return render_template("admin/books_day.html", section="books", run=run,
                           kinds=KIND_LABELS, categories=CATEGORY_LABELS,
                           form=CheckDayForm(data={"day": wanted}))
