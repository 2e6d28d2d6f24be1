"""Account settings: profile, a coach's public page, email address, password and the
calendar feed.

One page shows four forms; each posts to its own address, so a form's errors are
shown on that form alone and the others are rendered fresh.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask_login import current_user, login_required, login_user
from sqlalchemy.exc import IntegrityError
from werkzeug.wrappers import Response

import clock
from accounts.forms import EmailChangeForm, PasswordChangeForm, ProfileForm, PublicPageForm
from accounts.models import User
from accounts.services import (
    AccountError,
    SamePasswordError,
    change_email,
    change_password,
    check_new_email,
    password_matches,
    renew_calendar_token,
    update_profile,
    update_public_page,
)
from accounts.tokens import email_change_from_token, email_change_token, mail_link
from audit.services import record as audit
from extensions import db, limiter
from notifications.services import queue_mail

bp = Blueprint("settings", __name__, url_prefix="/settings")


@bp.before_request
@login_required
def require_login() -> None:
    """Every settings page is the logged-in user's own."""


@bp.route("/", methods=["GET", "POST"])
def profile() -> str | Response:
    form = ProfileForm(obj=current_user)
    if form.validate_on_submit():
        change = update_profile(current_user, name=form.name.data, timezone=form.timezone.data)
        if change["after"]:
            audit("user.profile_changed", current_user, actor=current_user, **change)
        db.session.commit()
        flash(f"Your profile is saved. Times are shown in {current_user.timezone}.", "success")
        return redirect(url_for(".profile"))
    return _settings_page(profile=form)


@bp.post("/public-page")
def public_page() -> str | Response:
    if not current_user.is_coach:
        abort(403)
    form = PublicPageForm()
    if form.validate_on_submit():
        try:
            change = update_public_page(current_user, slug=form.slug.data, bio=form.bio.data or "")
        except (AccountError, IntegrityError) as exc:
            # IntegrityError: another coach took the same address at this very moment.
            db.session.rollback()
            form.slug.errors.append(str(exc) if isinstance(exc, AccountError)
                                    else "Another coach has this address; choose another one.")
        else:
            if change["after"]:
                audit("user.public_page_changed", current_user, actor=current_user, **change)
            db.session.commit()
            flash(f"Your public page is saved: /c/{current_user.slug}.", "success")
            return redirect(url_for(".profile") + "#public-page")
    return _settings_page(public_page=form)


@bp.post("/password")
@limiter.limit("10 per hour")
def password() -> str | Response:
    form = PasswordChangeForm()
    if form.validate_on_submit():
        try:
            change_password(
                current_user, current=form.current_password.data, new=form.new_password.data
            )
        except SamePasswordError as exc:
            form.new_password.errors.append(str(exc))
        except AccountError as exc:
            form.current_password.errors.append(str(exc))
        else:
            audit("user.password_changed", current_user, actor=current_user)
            mail_password_changed(current_user)
            db.session.commit()
            # Other browsers are logged out by the new login version; this one stays in.
            login_user(current_user._get_current_object())
            flash("Your password is changed. Other devices logged in as you are logged out.",
                  "success")
            return redirect(url_for(".profile") + "#password")
    return _settings_page(password=form)


@bp.post("/email")
@limiter.limit("10 per hour")
def email() -> str | Response:
    form = EmailChangeForm()
    if form.validate_on_submit():
        if not password_matches(current_user, form.email_password.data):
            form.email_password.errors.append("Your current password is wrong.")
        else:
            try:
                new_email = check_new_email(current_user, form.new_email.data)
            except AccountError as exc:
                form.new_email.errors.append(str(exc))
            else:
                _mail_email_confirmation(current_user, new_email)
                db.session.commit()
                flash(f"We sent a link to {new_email}. Your address changes when you open it.",
                      "info")
                return redirect(url_for(".profile") + "#email")
    return _settings_page(email=form)


@bp.get("/email/confirm/<token>")
def confirm_email(token: str) -> Response:
    change = email_change_from_token(token)
    if change is None or change.user.id != current_user.id:
        flash("This confirmation link is invalid, expired or already used. "
              "Your email address is unchanged; ask for a new link below.", "danger")
        return redirect(url_for(".profile") + "#email")
    try:
        old_email = change_email(current_user, change.new_email)
    except (AccountError, IntegrityError):
        # Another account took the address since the link was sent (or at this very moment).
        db.session.rollback()
        flash(f"{change.new_email} now belongs to another account; "
              "your email address is unchanged.", "danger")
        return redirect(url_for(".profile") + "#email")
    audit("user.email_changed", current_user, actor=current_user,
          before={"email": old_email}, after={"email": current_user.email})
    queue_mail(
        old_email,
        "Your Coachpact email address was changed",
        f"The email address of your Coachpact account is now {current_user.email} "
        f"instead of {old_email}.\n\nIf you did not do this, reply to this mail at once.",
    )
    db.session.commit()
    flash(f"Your email address is now {current_user.email}.", "success")
    return redirect(url_for(".profile"))


@bp.post("/calendar")
def calendar() -> Response:
    was_on = current_user.calendar_token is not None
    renew_calendar_token(current_user)
    audit("user.calendar_feed_reset" if was_on else "user.calendar_feed_enabled",
          current_user, actor=current_user)
    db.session.commit()
    flash("Your calendar feed has a new address; the old one no longer works." if was_on
          else "Your calendar feed is on.", "success")
    return redirect(url_for(".profile") + "#calendar")


def _settings_page(
    *,
    profile: ProfileForm | None = None,
    email: EmailChangeForm | None = None,
    password: PasswordChangeForm | None = None,
    public_page: PublicPageForm | None = None,
) -> str:
    """The page with the submitted form as it was posted and the others empty."""
    return render_template(
        "accounts/settings.html",
        profile_form=profile or ProfileForm(formdata=None, obj=current_user),
        email_form=email or EmailChangeForm(formdata=None),
        password_form=password or PasswordChangeForm(formdata=None),
        public_page_form=(public_page or PublicPageForm(formdata=None, obj=current_user))
        if current_user.is_coach else None,
        feed_url=_feed_url(current_user),
        now=clock.now(),
    )


def _feed_url(user: User) -> str | None:
    # The feed's own blueprint may be absent (it is optional); the page works without it.
    if user.calendar_token is None or "calendar.feed" not in current_app.view_functions:
        return None
    return url_for("calendar.feed", token=user.calendar_token, _external=True)


def _mail_email_confirmation(user: User, new_email: str) -> None:
    link = mail_link(".confirm_email", token=email_change_token(user, new_email))
    queue_mail(
        new_email,
        "Confirm your new Coachpact email address",
        f"{user.name} asked to use this address for their Coachpact account.\n\n"
        f"Open this link within 24 hours to confirm it:\n{link}\n\n"
        "If that was not you, ignore this mail: nothing changes.",
    )


def mail_password_changed(user: User) -> None:
    queue_mail(
        user.email,
        "Your Coachpact password was changed",
        "The password of your Coachpact account was just changed.\n\n"
        "If you did not do this, reset it at once:\n" + mail_link("auth.forgot_password"),
    )
