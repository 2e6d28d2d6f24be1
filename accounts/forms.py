from __future__ import annotations

from functools import cache
from zoneinfo import available_timezones

from flask import current_app
from flask_wtf import FlaskForm
from wtforms import (
    EmailField,
    Field,
    PasswordField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    SubmitField,
)
from wtforms.validators import DataRequired, Email, EqualTo, Length

from accounts.models import Role


class EmailAddress:
    """A well-formed email address, checked by email-validator without DNS lookups.

    Registration and proposals share this rule, so any address that can register can be
    sent a proposal. The login form only looks an address up, so it does not check it.
    """

    def __init__(self, message: str | None = None) -> None:
        self.message = message

    def __call__(self, form: FlaskForm, field: Field) -> None:
        # `.test` is reserved (RFC 6761) and never gets mail: fine for demo data, not in production.
        test_environment = current_app.config["APP_ENV"] != "production"
        Email(self.message, check_deliverability=False, test_environment=test_environment)(
            form, field
        )


@cache
def timezone_choices() -> list[SelectChoice]:
    """Every IANA zone name, sorted (the legacy aliases like 'US/Eastern' left out)."""
    names = sorted(
        name
        for name in available_timezones()
        if "/" in name and not name.startswith(("Etc/", "SystemV/", "US/"))
    )
    return [SelectChoice(name, name.replace("_", " ")) for name in [*names, "UTC"]]


class RegistrationForm(FlaskForm):
    name = StringField("Full name", validators=[DataRequired(), Length(max=100)])
    email = EmailField("Email", validators=[DataRequired(), EmailAddress(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(min=10, max=128)])
    confirm = PasswordField(
        "Repeat password", validators=[DataRequired(), EqualTo("password", "Passwords differ.")]
    )
    role = RadioField(
        "I am a",
        choices=[
            SelectChoice(Role.STUDENT.value, "Student"),
            SelectChoice(Role.COACH.value, "Coach"),
        ],
        default=Role.STUDENT.value,
        validators=[DataRequired()],
    )
    timezone = SelectField("Time zone", validators=[DataRequired()], default="UTC")
    submit = SubmitField("Create account")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.timezone.choices = timezone_choices()


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=128)])
    submit = SubmitField("Log in")


# The settings page shows four forms at once, each posting to its own address; their
# field names differ so that the page's element ids stay unique.


class ProfileForm(FlaskForm):
    name = StringField("Full name", validators=[DataRequired(), Length(max=100)])
    timezone = SelectField("Time zone", validators=[DataRequired()])

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.timezone.choices = timezone_choices()


class PasswordChangeForm(FlaskForm):
    current_password = PasswordField(
        "Current password", validators=[DataRequired(), Length(max=128)]
    )
    new_password = PasswordField(
        "New password", validators=[DataRequired(), Length(min=10, max=128)]
    )
    confirm_password = PasswordField(
        "Repeat new password",
        validators=[DataRequired(), EqualTo("new_password", "Passwords differ.")],
    )


class EmailChangeForm(FlaskForm):
    new_email = EmailField(
        "New email address", validators=[DataRequired(), EmailAddress(), Length(max=254)]
    )
    # Not labelled "Current password": the password form on the same page has that one.
    email_password = PasswordField(
        "Your password", validators=[DataRequired(), Length(max=128)]
    )


class ForgotPasswordForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])


class ResetPasswordForm(FlaskForm):
    password = PasswordField(
        "New password", validators=[DataRequired(), Length(min=10, max=128)]
    )
    confirm = PasswordField(
        "Repeat new password", validators=[DataRequired(), EqualTo("password", "Passwords differ.")]
    )
