"""`flask --app app create-admin`: admins exist only through this command."""

from __future__ import annotations

import click
from flask import Flask

from accounts.models import Role
from accounts.services import AccountError, create_user
from extensions import db


def register_cli(app: Flask) -> None:
    @app.cli.command("create-admin")
    @click.option("--email", prompt=True)
    @click.option("--name", prompt=True, default="Administrator")
    @click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
    @click.option("--timezone", default="UTC", show_default=True)
    def create_admin(email: str, name: str, password: str, timezone: str) -> None:
        """Create an administrator account."""
        if len(password) < 10:
            raise click.BadParameter("use at least 10 characters", param_hint="--password")
        try:
            user = create_user(
                email=email, name=name, password=password, role=Role.ADMIN, timezone=timezone
            )
        except AccountError as exc:
            raise click.ClickException(str(exc)) from None
        db.session.commit()
        click.echo(f"Admin {user.email} created.")
