"""The offer form: the terms every coach's sale shares (`contracts.forms.TermsForm`), and
a coach's own smallest total for a plan."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import StringField, SubmitField
from wtforms.validators import Length, Optional, ValidationError

from contracts.forms import IfPlanOffered, TermsForm
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
