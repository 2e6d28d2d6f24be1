"""The sandbox's WSGI app: a local stand-in for the Stripe API, Checkout and webhooks."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask

from sandbox.engine import Engine
from sandbox.events import Events, Worker
from sandbox.settings import Settings
from sandbox.store import Store


class Sandbox:
    """Everything one sandbox instance owns, kept in `app.extensions["sandbox"]`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = Store(settings.db_path)
        self.events = Events(self.store, settings)
        self.engine = Engine(self.store, settings, self.events)
        self.worker = Worker(self.events, self.engine.tick)

    def close(self) -> None:
        """Stop the worker, then close the database (tests call this; so does __main__)."""
        self.worker.stop()
        self.store.close()


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the sandbox app.

    `config` overrides the environment, with the same names (SANDBOX_DB,
    SANDBOX_WEBHOOK_URLS, ...). The delivery worker starts here unless
    SANDBOX_WORKER is false; stop it with `app.extensions["sandbox"].close()`.
    """
    app = Flask(__name__)
    app.config.update(config or {})
    settings = Settings(config)
    box = Sandbox(settings)
    app.extensions["sandbox"] = box
    logging.getLogger("sandbox").setLevel(logging.INFO)

    from sandbox import api, billing_pages, checkout, connect, tools

    app.register_blueprint(api.bp)
    app.register_blueprint(billing_pages.bp)
    app.register_blueprint(checkout.bp)
    app.register_blueprint(connect.bp)
    app.register_blueprint(tools.bp)

    if settings.start_worker:
        box.worker.start()
    return app
