from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.wrappers import Response

from accounts.forms import LoginForm, RegistrationForm
from accounts.models import Role
from accounts.services import AccountError, authenticate, create_user
from extensions import db, limiter, login_manager

bp = Blueprint("auth", __name__, url_prefix="/auth")


@login_manager.user_loader
def load_user(user_id: str):
    from accounts.models import User

    return db.session.get(User, int(user_id))


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
            return redirect(url_for("contracts.index"))
    return render_template("accounts/register.html", form=form)


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
    return render_template("accounts/login.html", form=form)


@bp.post("/logout")
@login_required
def logout() -> Response:
    logout_user()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))
