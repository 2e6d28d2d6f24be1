"""Membership pages: a coach's membership offers, joining from the public page, and the
Memberships list both sides read."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from accounts import localtime
from contracts.forms import ConfirmForm
from contracts.money import MoneyError, format_money, to_major
from contracts.services import NotAllowed
from extensions import db
from offers import membership_cancel, membership_periods
from offers import membership_changes as changes
from offers import memberships as services
from offers.forms import EndMembershipForm, MembershipOfferForm
from offers.models import Membership, MembershipOffer, MembershipPeriod, OfferStatus
from offers.views import change_status, coach_of, coach_only
from payments.stripe_api import PaymentProviderError

bp = Blueprint("memberships", __name__)


@bp.route("/offers/memberships/new", methods=["GET", "POST"])
@login_required
def new() -> str | Response:
    coach_only()
    form = MembershipOfferForm()
    if form.validate_on_submit():
        try:
            offer = services.create_membership_offer(current_user, **_terms(form))
        except services.MembershipError as exc:
            form.sessions_per_period.errors.append(str(exc))
        except MoneyError as exc:
            form.price_per_period.errors.append(str(exc))
        else:
            db.session.commit()
            _publish(offer.id, f"Your membership “{offer.title}” is saved and for sale.")
            return redirect(url_for("offers.index"))
    return _form_page(form, "New membership")


@bp.route("/offers/memberships/<int:offer_id>/edit", methods=["GET", "POST"])
@login_required
def edit(offer_id: int) -> str | Response:
    coach_only()
    offer = services.membership_offer_of_coach(offer_id, current_user)
    form = MembershipOfferForm(data=None if request.method == "POST" else _form_data(offer))
    if form.validate_on_submit():
        try:
            new_price = services.update_membership_offer(offer, current_user, **_terms(form))
        except services.MembershipError as exc:
            db.session.rollback()
            form.sessions_per_period.errors.append(str(exc))
        except MoneyError as exc:
            db.session.rollback()
            form.price_per_period.errors.append(str(exc))
        else:
            db.session.commit()
            _publish(offer_id, f"“{offer.title}” is saved. "
                     + ("New members pay the new price; members keep theirs."
                        if new_price else "Members keep their terms."))
            return redirect(url_for("offers.index"))
    return _form_page(form, f"Edit “{offer.title}”")


@bp.post("/offers/memberships/<int:offer_id>/status")
@login_required
def status(offer_id: int) -> Response:
    coach_only()
    offer = services.membership_offer_of_coach(offer_id, current_user)
    wanted = change_status(offer, services.set_membership_offer_status)
    if wanted is OfferStatus.ACTIVE and offer.stripe_price_id is None:
        _publish(offer_id, None)
    return redirect(url_for("offers.index"))


def _publish(offer_id: int, saved: str | None) -> None:
    """Ask Stripe for the offer's Product and Price now that the change is committed."""
    try:
        services.publish_price(offer_id)
    except PaymentProviderError as exc:
        db.session.rollback()
        flash(f"Saved, but not on sale yet: {exc} Save it again in a moment to finish.",
              "warning")
        return
    if saved:
        flash(saved, "success")


def _form_page(form: MembershipOfferForm, title: str) -> str:
    return render_template("offers/membership_form.html", form=form, title=title)


def _terms(form: MembershipOfferForm) -> dict[str, Any]:
    return {
        "title": form.title.data,
        "description": form.description.data,
        "sessions_per_period": form.sessions_per_period.data,
        "minutes_per_session": form.minutes_per_session.data,
        "price_per_period": form.price_minor,
        "currency": form.currency.data,
        "period": MembershipPeriod(form.period.data),
    }


def _form_data(offer: MembershipOffer) -> dict[str, Any]:
    return {
        "title": offer.title,
        "description": offer.description,
        "sessions_per_period": offer.sessions_per_period,
        "minutes_per_session": offer.minutes_per_session,
        "period": offer.period.value,
        "currency": offer.currency,
        "price_per_period": str(to_major(offer.price_per_period, offer.currency)),
    }


# --- joining from the public page ---------------------------------------------------------


@bp.route("/c/<slug>/memberships/<int:offer_id>/join", methods=["GET", "POST"])
@login_required
def join(slug: str, offer_id: int) -> str | Response:
    """GET: the membership once more, to confirm (where a login or registration comes
    back to). POST: the claim, then Stripe's Checkout."""
    coach = coach_of(slug)
    if isinstance(coach, Response):
        return coach
    offer = services.public_membership_offer(coach, offer_id)
    refusal = services.join_refusal(offer, current_user)
    member = services.live_membership(current_user, offer.id)
    if request.method == "GET" or refusal is not None:
        if refusal is not None and request.method == "POST":
            flash(refusal, "danger")
            return redirect(url_for("offers.public_page", slug=coach.slug))
        return render_template(
            "offers/join.html", coach=coach, offer=offer, refusal=refusal,
            member=member, price_words=services.price_in_words(offer), form=ConfirmForm(),
        )
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        checkout_url = services.start_joining(offer.id, current_user)
    except (services.MembershipError, PaymentProviderError) as exc:
        db.session.rollback()
        flash(str(exc), "danger")
        return redirect(url_for(".join", slug=coach.slug, offer_id=offer.id))
    return redirect(checkout_url, code=303)


# --- the Memberships pages ----------------------------------------------------------------


@bp.get("/memberships/")
@login_required
def index() -> str:
    return render_template("offers/memberships.html", views=services.memberships_of(current_user),
                           price_words=services.price_in_words)


@bp.get("/memberships/<int:membership_id>")
@login_required
def detail(membership_id: int) -> str:
    membership = services.membership_for(membership_id, current_user)
    student = current_user.id == membership.student_id
    return render_template(
        "offers/membership.html", view=services.credits_now(membership),
        grants=services.grants_of(membership), joined=request.args.get("joined") == "1",
        price_words=services.price_in_words(membership), student=student,
        coach=current_user.id == membership.coach_id, changeable=(
            membership.status in changes.CHANGEABLE and membership.stripe_subscription_id),
        targets=changes.move_targets(membership) if student else [],
        price_of=services.price_in_words, pause_periods=changes.PAUSE_PERIODS,
        next_charge=membership.paused_until and changes.next_charge(
            membership, membership.paused_until),
        periods=membership_periods.open_periods(membership),
        rollover_words=membership_periods.rollover_words(),
    )


@bp.route("/memberships/<int:membership_id>/end", methods=["GET", "POST"])
@login_required
def end_now(membership_id: int) -> str | Response:
    """The coach ends the membership now, with the running period's prorated refund."""
    membership = services.membership_for(membership_id, current_user)
    refused = membership_cancel.cancel_refusal(membership, current_user)
    if refused:
        flash(refused, "danger")
        return redirect(url_for(".detail", membership_id=membership_id))
    form = EndMembershipForm()
    if form.validate_on_submit():
        try:
            membership_cancel.cancel_now(membership_id, current_user, reason=form.reason.data,
                                         quoted=form.quoted.data)
        except (services.MembershipError, PaymentProviderError) as exc:
            db.session.rollback()
            form.reason.errors = [str(exc)]
        else:
            db.session.commit()
            flash("The membership has ended; both of you have been told.", "success")
            return redirect(url_for(".detail", membership_id=membership_id))
    refund = membership_cancel.refund_preview(membership)
    form.quoted.data = refund
    return render_template("offers/membership_end.html", membership=membership, form=form,
                           refund=refund)


# --- changes: billing portal, cancel at period end, pause, move -----------------------------


@bp.post("/memberships/billing")
@login_required
def billing() -> Response:
    """Off to Stripe's customer portal (cards, invoices), coming back to Payments."""
    if not current_user.is_student or not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        url = changes.portal_url(current_user)
    except (services.MembershipError, PaymentProviderError) as exc:
        flash(str(exc), "danger")
        return redirect(url_for("payments.mine"))
    return redirect(url, code=303)


def _change(membership_id: int, do: Callable[[], Any], done: str) -> Response:
    """Run a change (it commits); its refusal, or Stripe's, flashed. Back to the page."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        do()
    except (services.MembershipError, NotAllowed, PaymentProviderError) as exc:
        db.session.rollback()
        flash(str(exc), "danger")
    else:
        flash(done, "success")
    return redirect(url_for(".detail", membership_id=membership_id))


def _yours(membership_id: int, *, coach_side: bool = False) -> Membership:
    """The membership, for its student (or with `coach_side` its coach) to change."""
    membership = services.membership_for(membership_id, current_user)
    if current_user.id != (membership.coach_id if coach_side else membership.student_id):
        abort(403)
    return membership


def _confirm(membership: Membership, question: str, lines: list[str], action: str,
             button: str, fields: dict[str, Any] | None = None, danger: bool = False) -> str:
    return render_template(
        "offers/membership_confirm.html", m=membership, question=question, lines=lines,
        action=url_for(action, membership_id=membership.id), button=button,
        fields=fields or {}, danger=danger, form=ConfirmForm())


@bp.route("/memberships/<int:membership_id>/cancel", methods=["GET", "POST"])
@login_required
def cancel(membership_id: int) -> str | Response:
    """GET: what ending at the period's end means, to confirm. POST: ask Stripe."""
    if request.method == "POST":
        return _change(membership_id, lambda: changes.cancel_at_period_end(
            membership_id, current_user), "Your membership ends at the end of this period.")
    membership = _yours(membership_id)
    return _confirm(membership, f"End “{membership.title}” at the end of this period?", [
        f"Nothing more is charged. You keep your sessions until "
        f"{localtime(membership.current_period_end, '%d %b %Y')}.",
        "You can change your mind until then: “Keep my membership”."],
        ".cancel", "End at period end", danger=True)


@bp.post("/memberships/<int:membership_id>/keep")
@login_required
def keep(membership_id: int) -> Response:
    return _change(membership_id, lambda: changes.cancel_at_period_end(
        membership_id, current_user, undo=True), "Your membership renews as before.")


@bp.route("/memberships/<int:membership_id>/pause", methods=["GET", "POST"])
@login_required
def pause(membership_id: int) -> str | Response:
    """The coach pauses collection for some periods: GET to confirm, POST to ask Stripe."""
    periods = request.values.get("periods", type=int) or 0
    if request.method == "POST":
        return _change(membership_id, lambda: changes.pause(membership_id, current_user,
                                                            periods), "Collection is paused.")
    membership = _yours(membership_id, coach_side=True)
    try:
        resumes_at = changes.pause_resumes_at(membership, periods)
    except services.MembershipError as exc:
        flash(str(exc), "danger")
        return redirect(url_for(".detail", membership_id=membership_id))
    renewals = f"{periods} renewal{'s' if periods != 1 else ''}"
    return _confirm(membership, f"Pause “{membership.title}” for {periods} "
                    f"period{'s' if periods != 1 else ''}?", [
        f"The next {renewals}, from {localtime(membership.current_period_end, '%d %b %Y')}, "
        f"are not charged: {membership.student.name} pays nothing and gets no new sessions "
        f"until {localtime(changes.next_charge(membership, resumes_at), '%d %b %Y')}, when "
        "Stripe charges again.",
        f"{membership.student.name} is told."],
        ".pause", "Pause collection", {"periods": periods})


@bp.post("/memberships/<int:membership_id>/resume")
@login_required
def resume(membership_id: int) -> Response:
    return _change(membership_id, lambda: changes.resume(membership_id, current_user),
                   "Collection resumes at the next renewal.")


@bp.route("/memberships/<int:membership_id>/move", methods=["GET", "POST"])
@login_required
def move(membership_id: int) -> str | Response:
    """The member moves to another offer: GET shows Stripe's prorated amount to confirm,
    POST asks Stripe."""
    offer_id = request.values.get("offer_id", type=int) or 0
    if request.method == "POST":
        return _change(membership_id, lambda: changes.move(membership_id, current_user,
                                                           offer_id), "Your membership moved.")
    membership = _yours(membership_id)
    try:
        preview = changes.preview_move(membership, offer_id)
    except (services.MembershipError, PaymentProviderError) as exc:
        flash(str(exc), "danger")
        return redirect(url_for(".detail", membership_id=membership_id))
    amount = format_money(abs(preview.amount), preview.currency)
    return _confirm(membership, f"Move to “{preview.offer.title}”?", [
        f"From now on: {services.price_in_words(preview.offer)}.",
        f"For the rest of this period you pay {amount} now, and get its share of the "
        "extra sessions at once." if preview.amount > 0 else
        "This period stays as paid, with its sessions; the new price and sessions start "
        "with the next period."],
        ".move", f"Move and pay {amount}" if preview.amount > 0 else "Move",
        {"offer_id": preview.offer.id})
