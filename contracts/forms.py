from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import current_app
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    Field,
    IntegerField,
    SelectChoice,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    StopValidation,
    ValidationError,
)

from accounts.forms import EmailAddress
from contracts.models import MINUTES_RANGE, SESSION_COUNT_RANGE
from contracts.money import CURRENCY_DECIMALS, MoneyError, parse_major
from contracts.plans import DEPOSIT_PERCENT_RANGE, INSTALMENTS_RANGE, PlanRules, plan_refusal


def most_instalments() -> int:
    """The most monthly instalments a coach may offer: the setting, within the plans' range."""
    return min(int(current_app.config["PLAN_MAX_INSTALMENTS"]), INSTALMENTS_RANGE[1])


class IfPlanOffered:
    """Validate a plan field only when "Offer a payment plan" is ticked; else ignore it."""

    def __call__(self, form: TermsForm, field: Field) -> None:
        if not form.offer_plan.data:
            field.errors[:] = []  # whatever was typed (even not a number) is ignored
            if not field.raw_data:
                # Not posted (the page's script disables the field while the box is
                # unticked): a page shown again offers the default, not an empty box.
                field.data = field.default
            raise StopValidation()


class TermsForm(FlaskForm):
    """The terms a coach sells: a proposal's (for one student) and an offer's (for anyone)
    share these fields and their checks."""

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
    offer_plan = BooleanField("Offer a payment plan")
    plan_deposit_percent = IntegerField(
        "Deposit (% of the total, paid up front)",
        validators=[IfPlanOffered(), InputRequired("Give the deposit, in percent.")],
        default=25,
        render_kw={"min": DEPOSIT_PERCENT_RANGE[0], "max": DEPOSIT_PERCENT_RANGE[1]},
    )
    plan_max_instalments = IntegerField(
        "Up to this many monthly instalments",
        validators=[IfPlanOffered(), InputRequired("Give the most instalments you allow.")],
        default=3,
        render_kw={"min": INSTALMENTS_RANGE[0]},
    )

    #: The price in minor units, set by a successful validation.
    price_minor: int

    def plan_minimum_minor(self) -> int | None:
        """The coach's own smallest total for a plan (minor units); None on proposals."""
        return None

    def validate_price_per_session(self, field: StringField) -> None:
        # The currency decides how many decimals a price may have.
        currency = self.currency.data if self.currency.data in CURRENCY_DECIMALS else "usd"
        try:
            self.price_minor = parse_major(field.data or "", currency)
        except MoneyError as exc:
            raise ValidationError(str(exc)) from None

    def validate_plan_deposit_percent(self, field: IntegerField) -> None:
        low, high = DEPOSIT_PERCENT_RANGE
        if field.data is not None and not low <= field.data <= high:
            raise ValidationError(f"The deposit is between {low} and {high} %.")

    def validate_plan_max_instalments(self, field: IntegerField) -> None:
        low, high = INSTALMENTS_RANGE[0], most_instalments()
        if high < low:
            raise ValidationError("Payment plans are not offered on Coachpact at the moment.")
        if field.data is not None and not low <= field.data <= high:
            raise ValidationError(f"Allow between {low} and {high} monthly instalments.")

    def validate(self, extra_validators=None) -> bool:
        if not super().validate(extra_validators):
            return False
        if self.offer_plan.data:
            # A plan on a total too small for one would never be offered to the student.
            why_not = plan_refusal(
                self.price_minor * self.session_count.data,
                self.currency.data,
                self.plan_deposit_percent.data,
                INSTALMENTS_RANGE[0],
                PlanRules(
                    minimum_total=Decimal(current_app.config["PLAN_MINIMUM_TOTAL"]),
                    max_instalments=most_instalments(),
                ),
                self.plan_minimum_minor(),
            )
            if why_not:
                self.offer_plan.errors.append(why_not)
                return False
        return True

    @property
    def plan_terms(self) -> tuple[int | None, int | None]:
        """(deposit percent, most instalments) once valid; (None, None) without a plan."""
        if not self.offer_plan.data:
            return None, None
        return self.plan_deposit_percent.data, self.plan_max_instalments.data

    def typed_terms(self) -> dict[str, Any] | None:
        """The price terms as typed so far (valid or not as a whole), for the preview;
        None until the sessions, currency and price make a total."""
        currency, count = self.currency.data, self.session_count.data
        if currency not in CURRENCY_DECIMALS or not isinstance(count, int):
            return None
        if not SESSION_COUNT_RANGE[0] <= count <= SESSION_COUNT_RANGE[1]:
            return None
        try:
            price = parse_major(self.price_per_session.data or "", currency)
        except MoneyError:
            return None
        return {"price_per_session": price, "session_count": count, "currency": currency}


class ProposalForm(TermsForm):
    student_email = EmailField(
        "Student's email",
        validators=[DataRequired(), EmailAddress(), Length(max=254)],
    )
    submit = SubmitField("Send proposal")


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
