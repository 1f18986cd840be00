"""Forms of the order pages: the direct order (written or spoken: channel, lines, voucher, notes) and
the order's actions (confirm, fulfil with an activation date, cancel with a reason, repeat)."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, FieldList, Form, FormField, HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from .models import ORDER_CHANNELS, ORDER_STATUSES

CHANNEL_LABELS = {"offer": _l("Accepted offer"), "written": _l("Written order"), "phone": _l("Phone"),
                  "walk_in": _l("Walk-in"), "email": _l("Email"), "chat": _l("Chat")}
STATUS_LABELS = {"placed": _l("Placed"), "confirmed": _l("Confirmed"), "paid": _l("Paid"),
                 "fulfilled": _l("Fulfilled"), "cancelled": _l("Cancelled")}
assert set(CHANNEL_LABELS) == set(ORDER_CHANNELS) and set(STATUS_LABELS) == set(ORDER_STATUSES)
# the channels of an order entered by hand ("offer": only an accepted offer places one)
DIRECT_CHANNELS = tuple(c for c in ORDER_CHANNELS if c != "offer")


class OrderLineForm(Form):
    """One line (a sub-form: the outer form carries the CSRF token). The product's choices are set
    by the view (the active catalogue); the service checks the product again."""

    product_id = SelectField(_l("Product"), choices=[("", "")], default="", validate_choice=False)
    description = StringField(_l("Description"), validators=[Optional(), Length(max=300)])
    identifier = StringField(_l("For (domain, hosting account or site)"), validators=[Optional(), Length(max=255)])
    quantity = StringField(_l("Quantity"), default="1", validators=[Optional(), Length(max=6)])
    unit_price = StringField(_l("Unit price (Rp)"), validators=[Optional(), Length(max=30)])
    discount = StringField(_l("Discount (Rp or percent)"), validators=[Optional(), Length(max=30)])

    def is_blank(self):
        return not (self.product_id.data or "").strip() and not (self.description.data or "").strip() \
            and not (self.unit_price.data or "").strip() and not (self.discount.data or "").strip()


class OrderForm(FlaskForm):
    customer_id = HiddenField(validators=[DataRequired()])
    channel = SelectField(_l("Channel"), choices=[(c, CHANNEL_LABELS[c]) for c in DIRECT_CHANNELS],
                          default="written")
    lines = FieldList(FormField(OrderLineForm), min_entries=1, max_entries=50)
    voucher = StringField(_l("Voucher code"), validators=[Optional(), Length(max=40)])
    notes = TextAreaField(_l("Notes"), validators=[Optional(), Length(max=4000)])


class ButtonForm(FlaskForm):
    """Confirm, repeat: nothing to type."""


class FulfilForm(FlaskForm):
    activation_date = DateField(_l("Activation date"), validators=[DataRequired()])


class CancelForm(FlaskForm):
    reason = TextAreaField(_l("Reason"), validators=[DataRequired(), Length(max=500)])
