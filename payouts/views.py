"""The coach's payouts page: the connected account, what was earned and sent."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from extensions import db
from payments.forms import ConfirmForm
from payments.stripe_api import PaymentProviderError
from payouts import accounts
from payouts.ledger import coach_payouts

bp = Blueprint("payouts", __name__, url_prefix="/payouts")


@bp.before_request
@login_required
def coaches_only() -> None:
    """Payouts are a coach's page; to anyone else it does not exist."""
    if not current_user.is_coach:
        abort(404)


@bp.get("/")
def index() -> str:
    account = accounts.account_of(current_user)
    return render_template(
        "payouts/index.html",
        account=account,
        needed=accounts.requirement_words(account.requirements_due) if account else [],
        payouts=coach_payouts(current_user),
        form=ConfirmForm(),
    )


@bp.post("/setup")
def setup() -> Response:
    """Make the connected account if needed and send the coach to Stripe's onboarding."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    return _to_onboarding()


@bp.get("/setup/again")
def refresh_link() -> Response:
    """Stripe's `refresh_url`: the link expired or was used; a fresh one."""
    return _to_onboarding()


def _to_onboarding() -> Response:
    try:
        link = accounts.onboarding_link(
            current_user,
            refresh_url=url_for("payouts.refresh_link", _external=True),
            return_url=url_for("payouts.returned", _external=True),
        )
    except (PaymentProviderError, accounts.PayoutsRefused) as exc:
        db.session.rollback()
        flash(str(exc), "danger")
        return redirect(url_for("payouts.index"))
    return redirect(link, 303)


@bp.get("/setup/done")
def returned() -> Response:
    """Stripe's `return_url`: ask Stripe where the account stands now (its event may lag)."""
    try:
        account = accounts.refresh(current_user)
        db.session.commit()
    except PaymentProviderError as exc:
        db.session.rollback()
        flash(str(exc), "warning")
        return redirect(url_for("payouts.index"))
    if account is not None and account.ready:
        flash("Payouts are set up: your sessions' earnings are sent to your account.", "success")
    else:
        flash("Stripe still needs a few details before it can pay you out.", "info")
    return redirect(url_for("payouts.index"))


@bp.post("/dashboard")
def dashboard() -> Response:
    """A single-use link into the coach's Stripe Express dashboard."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        link = accounts.login_link(current_user)
    except (PaymentProviderError, accounts.PayoutsRefused) as exc:
        flash(str(exc), "danger")
        return redirect(url_for("payouts.index"))
    return redirect(link, 303)
