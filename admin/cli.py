"""`flask --app app admin ...`: the console's commands."""

from __future__ import annotations

from flask import Flask
from flask.cli import AppGroup

group = AppGroup("admin", help="Admin console operations.")


def register_cli(app: Flask) -> None:
    app.cli.add_command(group)
