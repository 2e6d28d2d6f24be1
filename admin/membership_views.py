"""Memberships as the console sees them: every one, searchable, with its file, and the
admin's hand on one: end it now with its prorated refund, pause or resume its collection.

Each action is confirmed first (`admin.confirm`: the figures restated, a stale one refused)
and done by the membership's own services, which claim, commit, ask Stripe, audit the admin
as the actor and tell both parties. A refusal, or Stripe's, is shown on the page with
nothing changed. An invoice is refunded on its period's contract (the "Paid periods" table
links to it), through the contract page's refund form.
"""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from accounts.models import User
from admin import confirm, queries_memberships, restate
from admin.forms import EndMembershipNowForm, PauseMembershipForm
from admin.listing import int_arg
from admin.refund_views import send_and_tell
from admin.views import bp
from contracts.forms import ConfirmForm
from contracts.services import NotAllowed
from database.transactions import commit_or_refusal
from extensions import db
from offers import membership_cancel, membership_changes
from offers.memberships import PERIOD_WORDS, MembershipError
from offers.models import Membership, MembershipStatus
from payments.stripe_api import PaymentProviderError

# What a membership action may answer with instead of doing it.
REFUSALS = (MembershipError, NotAllowed, PaymentProviderError)


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
    return _page(db.get_or_404(Membership, membership_id))


def _page(membership: Membership, *, end_form: EndMembershipNowForm | None = None,
          pause_form: PauseMembershipForm | None = None,
          resume_form: ConfirmForm | None = None) -> str:
    """The membership's page; a refused action's form is shown again with its errors."""
    actions = actions_of(membership)
    return render_template(
        "admin/membership_detail.html",
        file=queries_memberships.membership_file(membership),
        period_words=PERIOD_WORDS,
        actions=actions,
        refund=membership_cancel.refund_preview(membership) if actions["end"] else 0,
        end_form=end_form or EndMembershipNowForm(formdata=None),
        pause_form=pause_form or PauseMembershipForm(formdata=None),
        resume_form=resume_form or ConfirmForm(formdata=None),
    )


def actions_of(membership: Membership) -> dict[str, bool]:
    """Which actions apply to the membership now: an ended one has none."""
    return {name: _not_now(membership, name) is None for name in ("end", "pause", "resume")}


def _not_now(membership: Membership, action: str) -> str | None:
    """Why `action` does not apply to the membership now, or None."""
    if action == "end":
        return membership_cancel.cancel_refusal(membership, current_user)
    if (membership.status not in membership_changes.CHANGEABLE
            or membership.stripe_subscription_id is None):
        return "This membership can no longer be changed."
    paused = membership.paused_until is not None
    if action == "resume":
        return None if paused else "Collection is not paused; there is nothing to resume."
    if paused:
        return "Collection is paused already."
    if membership.cancel_at_period_end:
        return "This membership ends at the end of this period: there is nothing to pause."
    return None


def _back_to(membership_id: int) -> Response:
    return redirect(url_for("admin.membership_detail", membership_id=membership_id,
                            _anchor="membership-actions"))


@bp.post("/memberships/<int:membership_id>/end-now")
def membership_end_now(membership_id: int) -> str | Response:
    membership = db.get_or_404(Membership, membership_id)
    form = EndMembershipNowForm()
    if form.validate_on_submit():
        reason = (form.reason.data or "").strip()
        refused = _not_now(membership, "end")
        if refused is None:
            refund = membership_cancel.refund_preview(membership)
            page = confirm.ask(restate.end_membership(membership, refund, reason))
            if page is not None:
                return page
            made, refused = commit_or_refusal(lambda: membership_cancel.cancel_now(
                membership_id, current_user, reason=reason, quoted=refund), *REFUSALS)
            if refused is None:
                flash("The membership has ended; both parties were told.", "success")
                if made is not None:
                    send_and_tell(made.id)
                return _back_to(membership_id)
        form.form_errors.append(refused)
    return _page(db.get_or_404(Membership, membership_id), end_form=form)


@bp.post("/memberships/<int:membership_id>/pause")
def membership_pause(membership_id: int) -> str | Response:
    membership = db.get_or_404(Membership, membership_id)
    form = PauseMembershipForm()
    if form.validate_on_submit():
        periods = int(form.periods.data)
        refused = _not_now(membership, "pause")
        try:
            resumes_at = membership_changes.pause_resumes_at(membership, periods)
        except MembershipError as exc:
            refused = refused or str(exc)
        if refused is None:
            charged_on = membership_changes.next_charge(membership, resumes_at)
            page = confirm.ask(restate.pause_membership(membership, periods, charged_on))
            if page is not None:
                return page
            _, refused = commit_or_refusal(lambda: membership_changes.pause(
                membership_id, current_user, periods), *REFUSALS)
            if refused is None:
                flash("Collection is paused; both parties were told.", "success")
                return _back_to(membership_id)
        form.form_errors.append(refused or "")
    return _page(db.get_or_404(Membership, membership_id), pause_form=form)


@bp.post("/memberships/<int:membership_id>/resume")
def membership_resume(membership_id: int) -> str | Response:
    membership = db.get_or_404(Membership, membership_id)
    form = ConfirmForm()
    if form.validate_on_submit():
        refused = _not_now(membership, "resume")
        if refused is None:
            page = confirm.ask(restate.resume_membership(membership))
            if page is not None:
                return page
            _, refused = commit_or_refusal(lambda: membership_changes.resume(
                membership_id, current_user), *REFUSALS)
        if refused is None:
            flash("Collection resumes at the next renewal; both parties were told.", "success")
            return _back_to(membership_id)
        form.form_errors.append(refused)
    return _page(db.get_or_404(Membership, membership_id), resume_form=form)
