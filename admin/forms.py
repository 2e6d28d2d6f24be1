from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import DateField, SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from payments.models import ManualMethod


class ReviewDecisionForm(FlaskForm):
    """Accept or refund a held payment; the note is kept with the decision."""

    note = TextAreaField(
        "Note", validators=[DataRequired("Say why, for the record."), Length(max=500)]
    )


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
