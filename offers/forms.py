"""The offer form: the terms every coach's sale shares (`contracts.forms.TermsForm`), and
a coach's own smallest total for a plan."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import IntegerField, SelectChoice, SelectField, StringField, SubmitField, TextAreaField
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

from contracts.forms import IfPlanOffered, TermsForm
from contracts.models import MINUTES_RANGE, SESSION_COUNT_RANGE
from contracts.money import CURRENCY_DECIMALS, MoneyError, parse_major


class OfferForm(TermsForm):
    """An offer's terms: a proposal's, for anyone, and optionally a coach's own smallest
    total for a plan."""

    plan_minimum_total = StringField(
        "Plans only for totals of at least (optional)",
        validators=[IfPlanOffered(), Optional(), Length(max=20)],
        description="Leave empty for the platform's minimum.",
    )
    submit = SubmitField("Save offer")

    _plan_minimum: int | None = None

    def validate_plan_minimum_total(self, field: StringField) -> None:
        currency = self.currency.data if self.currency.data in CURRENCY_DECIMALS else "usd"
        try:
            self._plan_minimum = parse_major(field.data or "", currency)
        except MoneyError as exc:
            raise ValidationError(str(exc)) from None

    def plan_minimum_minor(self) -> int | None:
        if not self.offer_plan.data or not (self.plan_minimum_total.data or "").strip():
            return None
        return self._plan_minimum


class OfferStatusForm(FlaskForm):
    """Pause, resume or archive an offer (one button each)."""


class MembershipOfferForm(FlaskForm):
    """A membership offer's terms: sessions each period for a price each period."""

    title = StringField("Title", validators=[DataRequired(), Length(max=120)])
    description = TextAreaField(
        "What the coaching covers", validators=[DataRequired(), Length(max=4000)]
    )
    sessions_per_period = IntegerField(
        "Sessions each period", validators=[InputRequired(), NumberRange(*SESSION_COUNT_RANGE)],
        default=4,
    )
    minutes_per_session = IntegerField(
        "Minutes per session", validators=[InputRequired(), NumberRange(*MINUTES_RANGE)],
        default=60,
    )
    period = SelectField(
        "Period", choices=[SelectChoice("month", "Monthly"), SelectChoice("week", "Weekly")],
        default="month", validators=[DataRequired()],
    )
    currency = SelectField(
        "Currency", choices=[SelectChoice(code, code.upper()) for code in CURRENCY_DECIMALS],
        default="usd", validators=[DataRequired()],
    )
    price_per_period = StringField(
        "Price each period", validators=[DataRequired(), Length(max=20)],
        description="Charged at joining, then at the start of each period until the member "
                    "leaves. A new price applies to new members; members keep theirs.",
    )
    submit = SubmitField("Save membership")

    price_minor: int = 0

    def validate_price_per_period(self, field: StringField) -> None:
        currency = self.currency.data if self.currency.data in CURRENCY_DECIMALS else "usd"
        try:
            self.price_minor = parse_major(field.data or "", currency)
        except MoneyError as exc:
            raise ValidationError(str(exc)) from None
        if self.price_minor <= 0:
            raise ValidationError("The price must be more than zero.")


class EndMembershipForm(FlaskForm):
    """End a membership now: the reason goes to both parties; `quoted` is the refund the
    page showed, so a refund that changed meanwhile is refused rather than made."""

    # 200 characters keep the notification (title, name, reason, refund) within its 500.
    reason = StringField(
        "Reason",
        validators=[DataRequired(message="Say why the membership ends."), Length(max=200)],
        render_kw={"placeholder": "Why does it end now?"},
    )
    quoted = IntegerField(validators=[InputRequired(), NumberRange(min=0)])
    submit = SubmitField("End the membership now")
