from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import (
    HiddenField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from contracts.money import CURRENCY_DECIMALS, MoneyError, parse_major, to_major
from payments.models import CATEGORY_LABELS, RefundCategory
from scheduling.forms import SlotField

REASON_LENGTH = (10, 2000)
# The pay page's choice: the whole total, or the number of instalments of a plan.
PAY_IN_FULL = "full"


def _stripped(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


class RefundRequestForm(FlaskForm):
    """A student asks for money back on a contract; an administrator decides."""

    category = SelectField(
        "What went wrong",
        choices=[SelectChoice("", "Choose one…")]
        + [SelectChoice(category.value, label) for category, label in CATEGORY_LABELS.items()],
        validators=[DataRequired("Choose what went wrong.")],
    )
    reason = TextAreaField(
        "Tell the administrator why you are asking",
        filters=[_stripped],
        validators=[
            DataRequired("Say why you are asking for a refund."),
            Length(
                *REASON_LENGTH,
                message="Write between %(min)d and %(max)d characters.",
            ),
        ],
        render_kw={"rows": 5},
    )

    @property
    def refund_category(self) -> RefundCategory:
        """The chosen category, once the form is valid."""
        return RefundCategory(self.category.data)


class PayForm(FlaskForm):
    """The pay button, and how to pay when the contract offers plans (`offer`).

    The price always comes from the contract: the form only names the choice.
    """

    plan = RadioField("How would you like to pay?", default=PAY_IN_FULL, validate_choice=False)
    # The first session's time, when the student picked one: held while they pay.
    slot = SlotField("First session", validators=[Optional()])

    def offer(self, instalment_counts: list[int]) -> PayForm:
        """The choices: in full, and each plan offered (by its number of instalments)."""
        self.plan.choices = [(PAY_IN_FULL, "In full")] + [
            (str(count), f"{count} monthly instalments") for count in instalment_counts
        ]
        return self

    def validate_plan(self, field: RadioField) -> None:
        offered = [value for value, _ in field.choices or [(PAY_IN_FULL, "In full")]]
        if not field.raw_data:
            # The plain pay button (no plans offered) sends no choice: in full.
            if len(offered) > 1:
                raise ValidationError("Choose how to pay: in full, or by one of the plans.")
            return
        if field.data not in offered:
            raise ValidationError("Choose one of the ways to pay shown here.")

    @property
    def instalments(self) -> int | None:
        """The plan chosen (its number of instalments), or None to pay in full."""
        return None if self.plan.data in (None, "", PAY_IN_FULL) else int(self.plan.data)


class ConfirmForm(FlaskForm):
    """A bare CSRF-protected form for one-click actions (pay an instalment, add or remove a
    card)."""


class PlanCardForm(FlaskForm):
    """The saved card a plan charges; `plans.use_card` checks it is the student's."""

    payment_method = StringField(
        "Card", validators=[DataRequired("Choose a card."), Length(max=255)]
    )


def amount_text(amount: int, currency: str) -> str:
    """Minor units as a person types them: "150.00" for 15000 usd, "5000" for 5000 jpy."""
    return f"{to_major(amount, currency):.{CURRENCY_DECIMALS[currency]}f}"


class RefundOfferForm(FlaskForm):
    """A coach gives money back: an amount typed in the contract's currency and why.

    The first submission shows what would happen; the same fields sent again with
    `confirm` set make the refund. Set `currency` (the contract's) before validating;
    `minor_amount` then holds the amount in minor units, converted exactly.
    """

    amount = StringField(
        "Amount to give back",
        validators=[DataRequired("Enter the amount to give back."), Length(max=20)],
    )
    reason = TextAreaField(
        "Why (the student sees this)",
        filters=[_stripped],
        validators=[
            DataRequired("Say why you give this money back; the student sees it."),
            Length(max=500, message="Write at most %(max)d characters."),
        ],
        render_kw={"rows": 3},
    )
    confirm = HiddenField()

    def __init__(self, *args: Any, currency: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.currency = currency
        self.minor_amount: int | None = None

    def validate_amount(self, field: StringField) -> None:
        try:
            self.minor_amount = parse_major(field.data or "", self.currency)
        except MoneyError as exc:
            raise ValidationError(str(exc)) from None

    @property
    def confirmed(self) -> bool:
        return self.confirm.data == "1"
