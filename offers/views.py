"""A coach's offers (their own pages) and the public page students buy from."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy.exc import IntegrityError
from werkzeug.wrappers import Response

from accounts.models import User
from accounts.services import coach_by_slug
from contracts.forms import ConfirmForm
from contracts.money import MoneyError, to_major
from contracts.views import terms_form_page
from database.states import TransitionError
from extensions import db
from offers import memberships, services
from offers.forms import OfferForm, OfferStatusForm
from offers.models import Offer, OfferStatus

bp = Blueprint("offers", __name__)

# The status buttons of the coach's list: what each asks for.
STATUS_ACTIONS = {
    "pause": OfferStatus.PAUSED,
    "resume": OfferStatus.ACTIVE,
    "archive": OfferStatus.ARCHIVED,
}


def coach_only() -> None:
    if not current_user.is_coach:
        abort(403)


def change_status(offer: Any, set_status: Callable[[Any, User, OfferStatus], Any]
                  ) -> OfferStatus:
    """The status buttons of the coach's list, for an offer or a membership offer: the
    status asked for, set and committed, or its refusal said; either way in a flash."""
    wanted = STATUS_ACTIONS.get(request.form.get("action", ""))
    if not OfferStatusForm().validate_on_submit() or wanted is None:
        abort(400)
    try:
        set_status(offer, current_user, wanted)
    except TransitionError as exc:
        db.session.rollback()
        flash(str(exc), "danger")
    else:
        db.session.commit()
        flash(f"“{offer.title}” is {wanted.value}.", "success")
    return wanted


@bp.get("/offers/")
@login_required
def index() -> str:
    coach_only()
    offers = services.offers_of(current_user)
    return render_template(
        "offers/index.html",
        offers=offers,
        prices={offer.id: services.price_of(offer) for offer in offers},
        memberships=memberships.membership_offers_of(current_user),
        price_words=memberships.price_in_words,
        form=OfferStatusForm(),
        OfferStatus=OfferStatus,
    )


@bp.route("/offers/new", methods=["GET", "POST"])
@login_required
def new() -> str | Response:
    coach_only()
    form = OfferForm()
    if form.validate_on_submit():
        try:
            offer = services.create_offer(current_user, **_terms(form))
        except services.OfferError as exc:
            form.offer_plan.errors.append(str(exc))
        except MoneyError as exc:
            form.price_per_session.errors.append(str(exc))
        else:
            db.session.commit()
            flash(f"Your offer “{offer.title}” is saved and for sale.", "success")
            return redirect(url_for(".index"))
    return _form_page(form, "New offer")


@bp.route("/offers/<int:offer_id>/edit", methods=["GET", "POST"])
@login_required
def edit(offer_id: int) -> str | Response:
    coach_only()
    offer = services.offer_of_coach(offer_id, current_user)
    form = OfferForm(data=None if request.method == "POST" else _form_data(offer))
    if form.validate_on_submit():
        try:
            services.update_offer(offer, current_user, **_terms(form))
        except services.OfferError as exc:
            db.session.rollback()
            form.offer_plan.errors.append(str(exc))
        except MoneyError as exc:
            db.session.rollback()
            form.price_per_session.errors.append(str(exc))
        else:
            db.session.commit()
            flash(f"“{offer.title}” is saved. Contracts already made keep their terms.",
                  "success")
            return redirect(url_for(".index"))
    return _form_page(form, f"Edit “{offer.title}”")


@bp.post("/offers/<int:offer_id>/status")
@login_required
def status(offer_id: int) -> Response:
    coach_only()
    change_status(services.offer_of_coach(offer_id, current_user), services.set_offer_status)
    return redirect(url_for(".index"))


def _form_page(form: OfferForm, title: str) -> str:
    return terms_form_page(
        form,
        title=title,
        intro="Students buy these terms from your public page and pay in full, or by a "
              "plan when your rules and the total allow one.",
        submit="Save offer",
        cancel_url=url_for(".index"),
    )


def _terms(form: OfferForm) -> dict[str, Any]:
    deposit_percent, max_instalments = form.plan_terms
    return {
        "title": form.title.data,
        "description": form.description.data,
        "session_count": form.session_count.data,
        "minutes_per_session": form.minutes_per_session.data,
        "price_per_session": form.price_minor,
        "currency": form.currency.data,
        "plan_deposit_percent": deposit_percent,
        "plan_max_instalments": max_instalments,
        "plan_minimum_total": form.plan_minimum_minor(),
    }


def _form_data(offer: Offer) -> dict[str, Any]:
    """The form's fields as the coach typed them: prices in major units."""
    planned = offer.plan_deposit_percent is not None
    return {
        "title": offer.title,
        "description": offer.description,
        "session_count": offer.session_count,
        "minutes_per_session": offer.minutes_per_session,
        "currency": offer.currency,
        "price_per_session": str(to_major(offer.price_per_session, offer.currency)),
        "offer_plan": planned,
        "plan_deposit_percent": offer.plan_deposit_percent if planned else 25,
        "plan_max_instalments": offer.plan_max_instalments if planned else 3,
        "plan_minimum_total": str(to_major(offer.plan_minimum_total, offer.currency))
        if offer.plan_minimum_total is not None else "",
    }


# --- the public page ------------------------------------------------------------------


def coach_of(slug: str) -> User | Response:
    """The coach whose page `slug` is; a 301 to the current address for an old slug."""
    coach, moved_to = coach_by_slug(slug)
    if moved_to is not None:
        target = request.path.replace(f"/c/{slug}", f"/c/{moved_to}", 1)
        return redirect(target, code=301)
    if coach is None:
        abort(404)
    return coach


@bp.get("/c/<slug>")
def public_page(slug: str) -> str | Response:
    coach = coach_of(slug)
    if isinstance(coach, Response):
        return coach
    offers = services.offers_of(coach, OfferStatus.ACTIVE)
    return render_template(
        "offers/public.html",
        coach=coach,
        prices=[services.price_of(offer) for offer in offers],
        memberships=[offer for offer in memberships.membership_offers_of(coach, OfferStatus.ACTIVE)
                     if offer.for_sale],
        price_words=memberships.price_in_words,
        form=ConfirmForm(),
    )


@bp.route("/c/<slug>/offers/<int:offer_id>/buy", methods=["GET", "POST"])
@login_required
def buy(slug: str, offer_id: int) -> str | Response:
    """GET: the offer once more, to confirm (where a login or registration comes back
    to). POST: the purchase, then the contract's pay page."""
    coach = coach_of(slug)
    if isinstance(coach, Response):
        return coach
    offer = services.public_offer(coach, offer_id)
    refusal = services.buy_refusal(offer, current_user)
    waiting = services.pending_purchase(current_user, offer.id)
    if request.method == "GET" or refusal is not None:
        if refusal is not None and request.method == "POST":
            flash(refusal, "danger")
            return redirect(url_for(".public_page", slug=coach.slug))
        return render_template(
            "offers/buy.html", coach=coach, price=services.price_of(offer),
            refusal=refusal, waiting=waiting, form=ConfirmForm(),
        )
    if not ConfirmForm().validate_on_submit():
        abort(400)
    return _bought(offer)


def _bought(offer: Offer) -> Response:
    try:
        contract, new = services.buy_offer(offer.id, current_user)
        db.session.commit()
    except services.OfferError as exc:
        db.session.rollback()
        flash(str(exc), "danger")
        return redirect(url_for(".public_page", slug=offer.coach.slug))
    except IntegrityError:
        # Another tab's purchase of the same offer committed first: that contract is ours.
        db.session.rollback()
        found = services.pending_purchase(current_user, offer.id)
        if found is None:
            raise
        contract, new = found, False
    if not new:
        flash("You already have an unpaid contract for this offer: here it is.", "info")
    return redirect(url_for("payments.pay", contract_id=contract.id))
