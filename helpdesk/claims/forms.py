"""Forms of the ticket page's cashback claim card (and the billing queue's claim rows)."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, HiddenField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional


class _Back(FlaskForm):
    # where to go afterwards: "ticket" (the ticket page) or "billing" (the billing queue)
    back = HiddenField(default="ticket")


class ClaimRequestForm(_Back):
    note = TextAreaField(_l("Note (optional)"), validators=[Optional(), Length(max=2000)])


class ClaimVerifyForm(_Back):
    note = TextAreaField(_l("Defect confirmed"), validators=[DataRequired(), Length(max=2000)])


class ClaimRejectForm(_Back):
    reason = TextAreaField(_l("Reason for rejecting"), validators=[DataRequired(), Length(max=2000)])


class ClaimApproveForm(_Back):
    amount = StringField(_l("Cashback amount (Rp)"), validators=[DataRequired(), Length(max=30)])
    item_paid = StringField(_l("Amount paid for the item (Rp)"), validators=[Optional(), Length(max=30)])
    note = StringField(_l("Note (optional)"), validators=[Optional(), Length(max=500)])


class ClaimPayForm(_Back):
    reference = StringField(_l("Payment reference"), validators=[DataRequired(), Length(max=120)])
    paid_on = DateField(_l("Paid on"), validators=[DataRequired()])
