from __future__ import annotations

from datetime import date
from typing import Any, TypedDict

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    IntegerField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, Optional, ValidationError
from wtforms.widgets import HiddenInput

from contracts.money import CURRENCY_DECIMALS, MoneyError, parse_major, to_major
from offers.membership_changes import PAUSE_PERIODS
from payments.models import ManualMethod


class ReviewDecisionForm(FlaskForm):
    """Accept or refund a held payment; the note is kept with the decision."""

    note = TextAreaField(
        "Note", validators=[DataRequired("Say why, for the record."), Length(max=500)]
    )
    # Accepting a short payment: write the shortfall off (the platform bears it).
    waive_shortfall = BooleanField("Write off the shortfall")


class ManualPaymentForm(FlaskForm):
    method = SelectField(
        "Paid by",
        choices=[SelectChoice(m.value, m.value.replace("_", " ").title()) for m in ManualMethod],
        validators=[DataRequired()],
    )
    reference = StringField(
        "Reference",
        validators=[DataRequired("The receipt, cheque or transfer reference."), Length(max=100)],
    )
    received_on = DateField("Received on", validators=[DataRequired("The date the money came.")])
    note = TextAreaField("Note", validators=[Optional(), Length(max=500)])
    # The deposit of a plan the contract offers, or the whole total (empty).
    instalments = SelectField(
        "What it pays", choices=[SelectChoice("", "The whole total")], default=""
    )

    def offer(self, plan_options: list[tuple[int, str]]) -> ManualPaymentForm:
        """Add the plans the contract offers: (instalments, "deposit of $X, then N × ...")."""
        self.instalments.choices = [SelectChoice("", "The whole total")] + [
            SelectChoice(str(count), label) for count, label in plan_options
        ]
        return self

    @property
    def plan_instalments(self) -> int | None:
        return int(self.instalments.data) if self.instalments.data else None

    @property
    def terms(self) -> ManualTerms:
        """What a valid form says was received (`payments.manual.record_manual_payment`)."""
        assert self.received_on.data is not None  # required
        return {
            "method": ManualMethod(self.method.data),
            "reference": self.reference.data or "",
            "received_on": self.received_on.data,
            "instalments": self.plan_instalments,
        }


class ManualTerms(TypedDict):
    method: ManualMethod
    reference: str
    received_on: date
    instalments: int | None


# --- money back ------------------------------------------------------------------------


def amount_text(amount: int, currency: str) -> str:
    """Minor units as an admin types them: "150.00" for 15000 usd, "5000" for 5000 jpy."""
    return f"{to_major(amount, currency):.{CURRENCY_DECIMALS[currency]}f}"


class RefundAmountForm(FlaskForm):
    """An amount typed in the contract's currency, as shown ("150.00", "5000").

    Set `currency` (the contract's) before validating; `minor_amount` then holds the
    amount in minor units, converted exactly (never through a float).
    """

    amount = StringField(
        "Amount", validators=[DataRequired("Enter the amount to refund."), Length(max=20)]
    )

    def __init__(self, *args: Any, currency: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.currency = currency
        self.minor_amount: int | None = None

    def validate_amount(self, field: StringField) -> None:
        assert self.currency, "set the form's currency before validating"
        try:
            self.minor_amount = parse_major(field.data or "", self.currency)
        except MoneyError as exc:
            raise ValidationError(str(exc)) from None


class ApproveRequestForm(RefundAmountForm):
    """Approve a refund request; an amount other than today's quote needs a reason."""

    request_id = IntegerField(widget=HiddenInput(), validators=[DataRequired()])
    override_reason = TextAreaField(
        "Why a different amount", validators=[Optional(), Length(max=500)]
    )


class RejectRequestForm(FlaskForm):
    request_id = IntegerField(widget=HiddenInput(), validators=[DataRequired()])
    note = TextAreaField(
        "Why not (the student sees this)",
        validators=[
            DataRequired("Say why the request is rejected; the student sees it."),
            Length(max=500),
        ],
    )


class BulkDecisionForm(FlaskForm):
    """Approve the ticked requests at their quotes, or reject them with one note."""

    request_ids = SelectMultipleField(
        coerce=int,
        validate_choice=False,  # the service refuses a request that is not open
        validators=[DataRequired("Tick the requests to decide.")],
    )
    note = TextAreaField("Note for a rejection", validators=[Optional(), Length(max=500)])
    approve = SubmitField("Approve selected at their quotes")
    reject = SubmitField("Reject selected")

    def validate(self, extra_validators: Any = None) -> bool:
        valid = super().validate(extra_validators)
        if not (self.approve.data or self.reject.data):
            self.form_errors.append("Choose to approve or to reject the selected requests.")
            return False
        if self.reject.data and not (self.note.data or "").strip():
            self.note.errors = [*self.note.errors, "Say why they are rejected; students see it."]
            return False
        return valid


class CancelWithRefundForm(FlaskForm):
    reason = TextAreaField(
        "Why the contract is cancelled (both parties see it)",
        validators=[
            DataRequired("Say why the contract is cancelled; both parties see it."),
            Length(max=450),
        ],
    )


class IssueRefundForm(RefundAmountForm):
    """An admin's own refund on a contract (a goodwill gesture, a correction)."""

    note = TextAreaField(
        "Why (kept with the refund)",
        validators=[DataRequired("Say why this refund is made."), Length(max=500)],
    )


# --- memberships -------------------------------------------------------------------------


class EndMembershipNowForm(FlaskForm):
    # 200 characters keep the notification (title, reason, refund) within its 500.
    reason = TextAreaField(
        "Why it ends now (both parties see it)",
        validators=[
            DataRequired("Say why the membership ends; both parties see it."),
            Length(max=200),
        ],
    )


class PauseMembershipForm(FlaskForm):
    periods = SelectField(
        "Pause collection for",
        choices=[SelectChoice(n, f"{n} period{'s' if n != 1 else ''}") for n in PAUSE_PERIODS],
        coerce=int,
    )


# --- payment plans -----------------------------------------------------------------------


class PlanActionForm(FlaskForm):
    """Pause or resume a plan: nothing to fill in but the CSRF token."""


class MoveInstalmentForm(FlaskForm):
    instalment_id = IntegerField(widget=HiddenInput(), validators=[DataRequired()])
    due_on = DateField("Move to", validators=[DataRequired("Choose the new due date.")])


class OfflineInstalmentForm(FlaskForm):
    """An instalment paid outside Stripe (a transfer, a cheque), recorded by an admin."""

    instalment_id = IntegerField(widget=HiddenInput(), validators=[DataRequired()])
    reference = StringField(
        "Reference",
        validators=[DataRequired("The receipt, cheque or transfer reference."), Length(max=100)],
    )
    note = TextAreaField("Note", validators=[Optional(), Length(max=500)])


class CancelPlanForm(FlaskForm):
    reason = TextAreaField(
        "Why the plan is cancelled (both parties see it)",
        validators=[
            DataRequired("Say why the plan is cancelled; both parties see it."),
            Length(max=450),
        ],
    )


def plan_forms() -> dict[str, FlaskForm]:
    """Empty forms for a contract's "Payment plan" section (rendered once per instalment)."""
    return {
        "action": PlanActionForm(formdata=None),
        "move": MoveInstalmentForm(formdata=None),
        "offline": OfflineInstalmentForm(formdata=None),
        "cancel": CancelPlanForm(formdata=None),
    }
