"""The application factory: `flask --app app run`, `flask --app app db upgrade`, ..."""

from __future__ import annotations

import importlib
import logging
import os
from typing import Any
from urllib.parse import urlsplit

from dotenv import load_dotenv
from flask import Flask, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import text
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

import accounts
import admin
import books
import contracts
import jobs
import notifications
import offers
import payments
import payouts
import scheduling
from config import load_config
from database.sqlite import tune_sqlite
from errors import NotFound
from extensions import bootstrap, csrf, db, limiter, login_manager, mail

ERROR_MESSAGES = {
    400: ("Bad request", "The request could not be understood. Reload the page and try again."),
    403: ("Not allowed", "Your account cannot do this."),
    404: ("Not found", "There is nothing here, or it is not yours to see."),
    405: ("Not allowed", "That is not how this page is used."),
    413: ("Too large", "The request was larger than we accept."),
    429: ("Slow down", "Too many attempts. Wait a minute and try again."),
    500: ("Something broke", "We could not finish that. Nothing was half-saved; try again."),
}


def create_app(overrides: dict[str, Any] | None = None, *, migrations: bool = True) -> Flask:
    """Build the app; `overrides` (tests) is applied on top of the environment's settings.

    Without `migrations` the app has no `flask db` commands and never imports Alembic:
    a web worker (`wsgi.py`) is some 12 MB smaller for it.
    """
    if os.environ.get("APP_ENV", "development") != "production":
        load_dotenv()
    app = Flask(__name__, instance_relative_config=True)
    # Werkzeug would redirect /admin//payments to /admin/payments for anyone, telling that a
    # page is there: a doubled slash is a 404 like any other unknown address.
    app.url_map.merge_slashes = False
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.from_mapping(load_config(app.instance_path))
    if overrides:
        app.config.from_mapping(overrides)
    logging.basicConfig(level=logging.INFO)

    db.init_app(app)
    with app.app_context():
        tune_sqlite(db.engine)
    if migrations:
        from flask_migrate import Migrate

        Migrate(app, db, render_as_batch=True)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message_category = "info"
    csrf.init_app(app)
    limiter.init_app(app)
    mail.init_app(app)
    bootstrap.init_app(app)

    jobs.init_app(app)
    _import_models()
    # Each package registers its own jobs, event handlers, commands and template
    # helpers, the layers beneath first: audit, notifications → accounts → contracts
    # → scheduling → payments → offers → payouts → books → admin.
    notifications.init_app(app)
    accounts.init_app(app)
    contracts.init_app(app)
    scheduling.init_app(app)
    payments.init_app(app)
    offers.init_app(app)
    payouts.init_app(app)
    books.init_app(app)
    admin.init_app(app)
    _register_blueprints(app)

    from demo import register_cli as register_demo_cli

    register_demo_cli(app)
    _register_pages(app)
    _register_security_headers(app)
    return app


# Flask-Migrate and create_all see only the tables of model modules imported by then:
# every module that defines models, named once (a test checks none is missing).
MODEL_MODULES = (
    "audit.models",
    "notifications.models",
    "accounts.models",
    "contracts.models",
    "scheduling.models",
    "payments.models",
    "offers.models",
    "payouts.models",
    "admin.models",
    "books.models",
)


def _import_models() -> None:
    for name in MODEL_MODULES:
        importlib.import_module(name)


def _register_blueprints(app: Flask) -> None:
    from accounts.settings_views import bp as settings_bp
    from accounts.views import bp as auth_bp
    from admin.views import bp as admin_bp
    from contracts.views import bp as contracts_bp
    from notifications.views import bp as notifications_bp
    from offers.membership_views import bp as memberships_bp
    from offers.views import bp as offers_bp
    from payments.inbox.webhook import bp as webhooks_bp
    from payments.views import bp as payments_bp
    from payouts.views import bp as payouts_bp
    from scheduling.calendar_views import bp as calendar_bp
    from scheduling.views import bp as sessions_bp

    app.register_blueprint(auth_bp)
    app.register_blueprint(settings_bp)
    app.register_blueprint(contracts_bp)
    app.register_blueprint(sessions_bp)
    app.register_blueprint(calendar_bp)
    app.register_blueprint(payments_bp)
    app.register_blueprint(offers_bp)
    app.register_blueprint(memberships_bp)
    app.register_blueprint(payouts_bp)
    app.register_blueprint(webhooks_bp)
    app.register_blueprint(notifications_bp)
    app.register_blueprint(admin_bp)


def _register_pages(app: Flask) -> None:
    @app.get("/")
    def home() -> str | Response:
        if current_user.is_authenticated:
            if current_user.is_admin:
                return redirect(url_for("admin.dashboard"))
            return redirect(url_for("contracts.index"))
        return render_template("home.html")

    # The addresses people type: the pages live under /auth. The query (a `next` page)
    # goes along.
    @app.get("/login")
    def login_shortcut() -> Response:
        return _redirect_keeping_query(url_for("auth.login"))

    @app.get("/register")
    def register_shortcut() -> Response:
        return _redirect_keeping_query(url_for("auth.register"))

    @app.get("/favicon.ico")
    def favicon() -> Response:
        # Browsers ask for /favicon.ico whatever the page links; answer with the SVG icon.
        return app.send_static_file("favicon.svg")

    @app.get("/healthz")
    def healthz() -> tuple[Response, int]:
        try:
            db.session.execute(text("SELECT 1"))
        except Exception:  # the check reports any database failure the same way
            app.logger.exception("health check failed")
            return jsonify(status="error", database="unreachable"), 503
        return jsonify(status="ok", database="ok"), 200

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[str, int]:
        code = error.code or 500
        title, message = ERROR_MESSAGES.get(code, (error.name, error.description))
        return render_template("error.html", code=code, title=title, message=message), code

    @app.errorhandler(NotFound)
    def not_found(error: NotFound) -> tuple[str, int]:
        # Services raise the domain's NotFound; to a person it is the 404 page.
        title, message = ERROR_MESSAGES[404]
        return render_template("error.html", code=404, title=title, message=message), 404

    @app.errorhandler(500)
    def server_error(error: Exception) -> tuple[str, int]:
        db.session.rollback()
        title, message = ERROR_MESSAGES[500]
        return render_template("error.html", code=500, title=title, message=message), 500


def _redirect_keeping_query(path: str) -> Response:
    query = request.query_string.decode("latin-1")
    return redirect(path + ("?" + query if query else ""))


def _register_security_headers(app: Flask) -> None:
    # Checkout forms redirect to Stripe's (or the sandbox's) page; Chrome applies
    # form-action to that redirect, so the checkout origin must be listed.
    checkout = "https://checkout.stripe.com"
    if app.config.get("STRIPE_API_BASE"):
        parts = urlsplit(app.config["STRIPE_API_BASE"])
        checkout = f"{parts.scheme}://{parts.netloc}"
    policy = (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'self'; "
        f"form-action 'self' {checkout}; frame-ancestors 'none'"
    )
    production = app.config["APP_ENV"] == "production"

    @app.after_request
    def security_headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", policy)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        # A page may ask for a stricter policy (the calendar feed: its address is a secret).
        response.headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        if production:
            response.headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
        return response
