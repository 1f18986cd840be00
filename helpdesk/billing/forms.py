"""Forms of the billing pages: record a payment, confirm or reject one, void an invoice."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional


class PaymentForm(FlaskForm):
    amount = StringField(_l("Amount (Rp)"), validators=[DataRequired(), Length(max=30)])
    method = SelectField(_l("Method"), choices=[], validators=[DataRequired()])
    reference = StringField(_l("Reference"), validators=[Optional(), Length(max=120)])
    paid_on = DateField(_l("Paid on"), validators=[DataRequired()])
    note = StringField(_l("Note (optional)"), validators=[Optional(), Length(max=500)])
    confirm = BooleanField(_l("Confirm now (the money has arrived)"), default=True)


class ConfirmPaymentForm(FlaskForm):
    """Nothing to type."""


class RejectPaymentForm(FlaskForm):
    reason = StringField(_l("Reason"), validators=[DataRequired(), Length(max=500)])


class VoidForm(FlaskForm):
    reason = TextAreaField(_l("Reason"), validators=[DataRequired(), Length(max=500)])
