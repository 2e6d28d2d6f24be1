from __future__ import annotations

import json

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
    TextAreaField,
)
from wtforms.validators import DataRequired, Email, EqualTo, Length, Optional

from accounts.models import Role
from accounts.timezones import canonical_zone, canonical_zones, zone_aliases, zone_groups, zone_of
from clock import now


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


class TimezoneField(SelectField):
    """A zone picked from the offered ones (`accounts.timezones`), grouped by region.

    An old name of a zone ("US/Eastern", "Asia/Calcutta") reads as the zone it names, so
    a person whose saved zone is such a name sees it picked, and saves the current name.
    A saved zone with no offered equal ("Etc/GMT+5") stays a choice of its own, so saving
    the page keeps it rather than failing.
    """

    def __init__(self, label: str = "Time zone", **kwargs) -> None:
        kwargs.setdefault("validators", [DataRequired()])
        super().__init__(label, filters=[canonical_zone], **kwargs)
        self.choices = timezone_choices()

    @property
    def aliases_json(self) -> str:
        """Old name → offered zone, for the page's script (browsers may report old names)."""
        return json.dumps(zone_aliases(), separators=(",", ":"), sort_keys=True)

    def keep_choice(self, name: str | None) -> None:
        """Offer `name` too when it is a real zone the list does not hold."""
        name = canonical_zone(name)
        if name and name not in canonical_zones() and zone_of(name).key == name:
            self.choices = {"Your current zone": [SelectChoice(name, name)], **self.choices}


def timezone_choices() -> dict[str, list[SelectChoice]]:
    """The offered zones as the select's <optgroup>s, labelled with today's offsets."""
    return {
        region: [SelectChoice(choice.value, choice.label) for choice in choices]
        for region, choices in zone_groups(now().date())
    }


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
    # UTC without JavaScript; the page's script picks the browser's own zone.
    timezone = TimezoneField(default="UTC")
    submit = SubmitField("Create account")


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=128)])
    submit = SubmitField("Log in")


# The settings page shows four forms at once, each posting to its own address; their
# field names differ so that the page's element ids stay unique.


class ProfileForm(FlaskForm):
    name = StringField("Full name", validators=[DataRequired(), Length(max=100)])
    timezone = TimezoneField()

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        user = kwargs.get("obj")
        self.timezone.keep_choice(getattr(user, "timezone", None))


class PublicPageForm(FlaskForm):
    """A coach's public page: its address (/c/<slug>) and a short bio."""

    slug = StringField(
        "Page address",
        validators=[DataRequired(), Length(max=60)],
        description="Lowercase letters, digits and hyphens; your page is /c/ and this.",
    )
    bio = TextAreaField(
        "Short bio",
        validators=[Optional(), Length(max=600)],
        description="A few sentences students read on your page (600 characters at most).",
    )


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
