from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import SelectChoice, SelectField, TextAreaField
from wtforms.validators import DataRequired, Length

from payments.models import CATEGORY_LABELS, RefundCategory

REASON_LENGTH = (10, 2000)


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
