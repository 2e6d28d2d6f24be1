from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    EmailField,
    IntegerField,
    SelectChoice,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
    TimeField,
)
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

from accounts.forms import EmailAddress
from contracts.models import MINUTES_RANGE, SESSION_COUNT_RANGE
from contracts.money import CURRENCY_DECIMALS, MoneyError, parse_major


class ProposalForm(FlaskForm):
    student_email = EmailField(
        "Student's email",
        validators=[DataRequired(), EmailAddress(), Length(max=254)],
    )
    title = StringField("Title", validators=[DataRequired(), Length(max=120)])
    description = TextAreaField(
        "What the coaching covers", validators=[DataRequired(), Length(max=4000)]
    )
    session_count = IntegerField(
        "Number of sessions",
        validators=[InputRequired(), NumberRange(*SESSION_COUNT_RANGE)],
        default=4,
    )
    minutes_per_session = IntegerField(
        "Minutes per session",
        validators=[InputRequired(), NumberRange(*MINUTES_RANGE)],
        default=60,
    )
    currency = SelectField(
        "Currency",
        choices=[SelectChoice(code, code.upper()) for code in CURRENCY_DECIMALS],
        default="usd",
        validators=[DataRequired()],
    )
    price_per_session = StringField(
        "Price per session", validators=[DataRequired(), Length(max=20)]
    )
    submit = SubmitField("Send proposal")

    #: The price in minor units, set by a successful validation.
    price_minor: int

    def validate_price_per_session(self, field: StringField) -> None:
        # The currency decides how many decimals a price may have.
        currency = self.currency.data if self.currency.data in CURRENCY_DECIMALS else "usd"
        try:
            self.price_minor = parse_major(field.data or "", currency)
        except MoneyError as exc:
            raise ValidationError(str(exc)) from None


class ConfirmForm(FlaskForm):
    """A bare CSRF-protected form for one-click actions (accept, decline, withdraw)."""


class CancelContractForm(FlaskForm):
    """Call off a pending, unpaid contract; the reason goes to the other party."""

    # 200 characters keep the notification (name, title and reason) within its 500.
    reason = StringField(
        "Reason",
        validators=[DataRequired(message="Say why you are cancelling."), Length(max=200)],
        render_kw={"placeholder": "Why are you cancelling?"},
    )
    submit = SubmitField("Cancel this contract")


class SessionForm(FlaskForm):
    """Book a session: a date and time on the booker's own wall clock."""

    day = DateField("Date", validators=[InputRequired()])
    # step=900: the browser's picker offers quarter hours, the service enforces them.
    at = TimeField("Start time", validators=[InputRequired()], render_kw={"step": 900})
    note = TextAreaField(
        "Note for the session (optional)",
        validators=[Optional(), Length(max=500)],
        render_kw={"rows": 2, "placeholder": "What would you like to focus on?"},
    )
    submit = SubmitField("Book session")
