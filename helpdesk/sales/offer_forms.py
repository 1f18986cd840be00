"""Forms of the offer pages, the customer's signed link and the vouchers admin."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (BooleanField, DateField, FieldList, Form, FormField, HiddenField, IntegerField, SelectField,
                     StringField, TextAreaField)
from wtforms.validators import AnyOf, InputRequired, Length, NumberRange, Optional

MAX_ROWS = 50
TAX_CHOICES = [("0", _l("No tax")), ("1100", _l("PPN 11 (VAT)"))]
LOCALE_CHOICES = [("id", "Bahasa Indonesia"), ("en", "English")]


class LineForm(Form):
    """One row of the lines editor: a catalogue product or free text (no CSRF of its own)."""
    product_id = SelectField(_l("Product"), choices=[("", "")], validate_choice=False)
    description = StringField(_l("Description"), validators=[Optional(), Length(max=300)])
    quantity = StringField(_l("Quantity"), validators=[Optional(), Length(max=10)])
    unit_price = StringField(_l("Unit price"), validators=[Optional(), Length(max=30)])
    discount = StringField(_l("Discount"), validators=[Optional(), Length(max=30)])


class OfferForm(FlaskForm):
    lines = FieldList(FormField(LineForm), min_entries=1, max_entries=MAX_ROWS)
    voucher = StringField(_l("Voucher code"), validators=[Optional(), Length(max=40)])
    tax_rate = SelectField(_l("Tax"), choices=TAX_CHOICES, default="0")
    valid_days = IntegerField(_l("Valid for (days)"), default=14,
                              validators=[InputRequired(_l("How many days is the offer valid?")),
                                          NumberRange(1, 365, _l("An offer is valid for 1 to 365 days."))])
    locale = SelectField(_l("Language"), choices=LOCALE_CHOICES, default="id")
    notes = TextAreaField(_l("Notes"), validators=[Optional(), Length(max=5000)])
    action = HiddenField()

    def raw_lines(self):
        """The filled-in rows as services.price_lines wants them (empty rows are skipped)."""
        out = []
        for row in self.lines:
            d = row.form
            values = {k: (getattr(d, k).data or "").strip() for k in ("product_id", "description", "quantity",
                                                                     "unit_price", "discount")}
            if not any(values.values()):
                continue
            out.append({"product_id": int(values["product_id"]) if values["product_id"].isdigit() else None,
                        "description": values["description"], "quantity": values["quantity"] or "1",
                        "unit_price": values["unit_price"], "discount": values["discount"]})
        return out


class ButtonForm(FlaskForm):
    """A button that only needs the CSRF token (send, make an offer)."""
    lead_id = HiddenField()
    customer_id = HiddenField()


class DecisionForm(FlaskForm):
    """The customer's answer on the signed link: the button pressed sends `decision`."""
    decision = StringField(validators=[InputRequired(_l("Please accept or decline.")),
                                       AnyOf(("accept", "decline"), message=_l("Please accept or decline."))])
    reason = TextAreaField(_l("Why do you decline? (optional)"), validators=[Optional(), Length(max=2000)])


class VoucherForm(FlaskForm):
    code = StringField(_l("Code"), validators=[InputRequired(_l("Give the code.")), Length(max=40)])
    description = StringField(_l("Description"), validators=[Optional(), Length(max=200)])
    kind = SelectField(_l("Kind"), choices=[("percent", _l("Percent off")), ("amount", _l("Amount off (rupiah)"))])
    value = StringField(_l("Value"), validators=[InputRequired(_l("Give the value.")), Length(max=30)])
    valid_from = DateField(_l("Valid from"), validators=[Optional()])
    valid_until = DateField(_l("Valid until"), validators=[Optional()])
    usage_limit = IntegerField(_l("Usage limit"), validators=[Optional(), NumberRange(1, 10_000_000)])
    one_per_customer = BooleanField(_l("Once per customer"), default=True)
    min_subtotal = StringField(_l("Minimum order"), validators=[Optional(), Length(max=30)])
    active = BooleanField(_l("Active"), default=True)
