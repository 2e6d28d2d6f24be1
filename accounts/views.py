from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.wrappers import Response

from accounts.forms import ForgotPasswordForm, LoginForm, RegistrationForm, ResetPasswordForm
from accounts.models import Role, User
from accounts.services import (
    AccountError,
    authenticate,
    create_user,
    find_user_by_email,
    normalize_email,
    set_password,
    user_for_login_id,
)
from accounts.settings_views import mail_password_changed
from accounts.tokens import (
    mail_link,
    password_reset_token,
    unknown_address_work,
    user_for_reset_token,
)
from audit.services import record as audit
from extensions import db, limiter, login_manager
from notifications.services import mailed_within, queue_mail

bp = Blueprint("auth", __name__, url_prefix="/auth")


@login_manager.user_loader
def load_user(user_id: str):
    return user_for_login_id(user_id)


def _safe_next(target: str | None) -> str:
    """`target` if it is a path on this site, else the default page.

    An absolute or scheme-relative URL would be an open redirect. Browsers also drop
    tab, CR and LF anywhere in a URL and read a backslash as a slash, so `?next=/%09/evil.example`
    or `?next=/%5Cevil.example` would lead to //evil.example: control characters and
    backslashes are refused outright rather than cleaned up.
    """
    if not target or any(ord(char) < 0x20 or char in "\x7f\\" for char in target):
        return url_for("contracts.index")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("contracts.index")
    return target


@bp.route("/register", methods=["GET", "POST"])
@limiter.limit("20 per hour", methods=["POST"])
def register() -> str | Response:
    if current_user.is_authenticated:
        return redirect(url_for("contracts.index"))
    form = RegistrationForm()
    if form.validate_on_submit():
        existing = find_user_by_email(form.email.data)
        if existing is not None:
            # Saying "this address has an account" would tell anyone who is registered:
            # the owner hears of it by mail, the page says nothing about the address.
            mail_registration_attempt(existing)
            db.session.commit()
            flash(REGISTRATION_ELSEWHERE, "info")
            return redirect(url_for("auth.login", **_next_arg()))
        try:
            user = create_user(
                email=form.email.data,
                name=form.name.data,
                password=form.password.data,
                role=Role(form.role.data),
                timezone=form.timezone.data,
            )
        except AccountError as exc:
            form.email.errors.append(str(exc))
        else:
            db.session.commit()
            login_user(user)
            flash(f"Welcome to Coachpact, {user.name}.", "success")
            # Back to where the visitor was going (a coach's offer), as after a login.
            return redirect(_safe_next(request.args.get("next")))
    return render_template("accounts/register.html", form=form, next_arg=_next_arg())


def _next_arg() -> dict[str, str]:
    """The page to return to, for links between the login and registration pages: only
    a safe one travels on."""
    target = request.args.get("next")
    if target and _safe_next(target) == target:
        return {"next": target}
    return {}


# What a registration with an address that has an account answers. The page names
# neither the address nor an account; the owner learns what happened by mail. (A new
# address is logged in at once, so a visitor who tries both still sees a difference:
# only a confirmation mail before the first login would close it.)
REGISTRATION_ELSEWHERE = "We sent a mail to that address: it says how to go on from here."


REGISTRATION_ATTEMPT_SUBJECT = "Someone tried to register with your Coachpact address"


def mail_registration_attempt(user: User) -> None:
    """Tell the owner of an address that someone tried to register it: once an hour at
    most, so the form cannot be used to flood an inbox."""
    if mailed_within(user.email, REGISTRATION_ATTEMPT_SUBJECT, timedelta(hours=1)):
        return
    queue_mail(
        user.email,
        REGISTRATION_ATTEMPT_SUBJECT,
        "Someone just tried to open a new Coachpact account with this email address, "
        "which already has one.\n\n"
        "If it was you, log in:\n" + mail_link("auth.login") + "\n\n"
        "or, if you forgot your password, choose a new one:\n"
        + mail_link("auth.forgot_password") + "\n\n"
        "If it was not you, ignore this mail: your account is unchanged.",
    )


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("10 per minute", methods=["POST"])
def login() -> str | Response:
    if current_user.is_authenticated:
        return redirect(url_for("contracts.index"))
    form = LoginForm()
    if form.validate_on_submit():
        user = authenticate(form.email.data, form.password.data)
        if user is None:
            form.password.errors.append("Email or password is wrong.")
        else:
            db.session.commit()  # a password rehash may have changed the row
            login_user(user)
            flash(f"Logged in as {user.name}.", "success")
            return redirect(_safe_next(request.args.get("next")))
    return render_template("accounts/login.html", form=form, next_arg=_next_arg())


@bp.post("/logout")
@login_required
def logout() -> Response:
    logout_user()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))


# The same words whether or not an account has the address, so the page tells nobody
# which addresses are registered.
RESET_SENT = (
    "If an account exists for that address, we sent it a link to choose a new password. "
    "The link works for one hour."
)


def _submitted_email() -> str:
    """The rate-limit key of one address, so nobody can flood an inbox from many IPs."""
    return "forgot:" + normalize_email(request.form.get("email", ""))


@bp.route("/forgot", methods=["GET", "POST"])
@limiter.limit("5 per hour", methods=["POST"])
@limiter.limit("3 per hour", methods=["POST"], key_func=_submitted_email)
def forgot_password() -> str | Response:
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        user = find_user_by_email(form.email.data)
        if user is None:
            unknown_address_work(form.email.data)
        else:
            link = mail_link("auth.reset_password", token=password_reset_token(user))
            queue_mail(
                user.email,
                "Reset your Coachpact password",
                f"Open this link within one hour to choose a new password:\n{link}\n\n"
                "If you did not ask for it, ignore this mail: your password stays as it is.",
            )
            db.session.commit()
        flash(RESET_SENT, "info")
        return redirect(url_for("auth.forgot_password"))
    return render_template("accounts/forgot_password.html", form=form)


@bp.route("/reset/<token>", methods=["GET", "POST"])
@limiter.limit("10 per hour", methods=["POST"])
def reset_password(token: str) -> str | Response | tuple[str, int]:
    user = user_for_reset_token(token)
    if user is None:
        return render_template("accounts/reset_invalid.html"), 400
    form = ResetPasswordForm()
    if form.validate_on_submit():
        set_password(user, form.password.data)
        audit("user.password_reset", user, actor=user)
        mail_password_changed(user)
        db.session.commit()
        # Whoever was logged in on this browser, the next step is a fresh login.
        logout_user()
        flash("Your password is changed. Log in with the new one.", "success")
        return redirect(url_for("auth.login"))
    return render_template("accounts/reset_password.html", form=form)
