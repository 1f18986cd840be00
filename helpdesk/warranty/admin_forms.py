"""Forms of the catalogue admin pages: products, service contract plans, issue categories.

Prices and bundles are free text: helpdesk.warranty.admin_services parses and validates them, so a
rejected form shows the text as typed."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from .admin_services import MAX_DAYS
from .rules import PRODUCT_LINES

LINE_LABELS = {"website": _l("Website"), "domain_hosting": _l("Domain & hosting"),
               "reseller_franchise": _l("Reseller & franchise"), "ads_seo": _l("Web ads & SEO"),
               "daily_deal": _l("Daily deal")}
LINE_CHOICES = [(line, LINE_LABELS[line]) for line in PRODUCT_LINES]


class ProductForm(FlaskForm):
    code = StringField(_l("Code"), validators=[DataRequired(), Length(max=40)],
                       description=_l("Capital letters, digits and dashes, for example WEB-TOKO."))
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    product_line = SelectField(_l("Product line"), choices=LINE_CHOICES)
    price = StringField(_l("Price (rupiah)"), validators=[Length(max=40)],
                        description=_l("For example 4.500.000 or 4500000."))
    warranty_days = IntegerField(_l("Warranty (days)"), default=0,
                                 validators=[Optional(), NumberRange(min=0, max=MAX_DAYS)],
                                 description=_l("0: no warranty. Counted from the activation day."))
    cashback_days = IntegerField(_l("Cashback guarantee (days)"), default=0,
                                 validators=[Optional(), NumberRange(min=0, max=MAX_DAYS)],
                                 description=_l("0: no cashback guarantee. Normally 30 for websites and for "
                                                "domain & hosting, 0 for the other lines."))
    cashback_categories = SelectMultipleField(_l("Defects the cashback guarantee covers"), choices=[])
    bundle = TextAreaField(_l("Bundled for free"), validators=[Length(max=2000)],
                           description=_l("One a line: a product line or a product code, then the free days, "
                                          "for example: domain_hosting 365"))
    term_days = IntegerField(_l("Renewal term (days)"), validators=[Optional(), NumberRange(min=1, max=MAX_DAYS)],
                             description=_l("Domains, hosting and contracts: the days one payment buys, for example "
                                            "365. Blank: a one-off product."))
    active = BooleanField(_l("Active (can be sold and chosen)"), default=True)


class PlanForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    coverage_days = IntegerField(_l("Coverage (days)"), default=365,
                                 validators=[Optional(), NumberRange(min=1, max=MAX_DAYS)])
    covers_lines = SelectMultipleField(_l("Covers these product lines"), choices=LINE_CHOICES)
    covers_products = SelectMultipleField(_l("And these products"), choices=[])
    support_tier = StringField(_l("Support tier"), default="standard", validators=[Length(max=32)])
    price = StringField(_l("Price (rupiah)"), validators=[Length(max=40)],
                        description=_l("For example 1.200.000 or 1200000."))
    active = BooleanField(_l("Active (can be sold)"), default=True)


class IssueCategoryForm(FlaskForm):
    code = StringField(_l("Code"), validators=[DataRequired(), Length(max=40)],
                       description=_l("Lower-case letters, digits and _, for example site_down."))
    name_id = StringField(_l("Name in Indonesian"), validators=[DataRequired(), Length(max=120)])
    name_en = StringField(_l("Name in English"), validators=[DataRequired(), Length(max=120)])
    is_defect = BooleanField(_l("A defect (warranty, bundle and cashback can apply)"), default=True,
                             description=_l("Not for requests such as a content change or a billing question."))
    product_line = SelectField(_l("Product line (optional)"), choices=[("", _l("Any"))] + LINE_CHOICES, default="")
    active = BooleanField(_l("Active"), default=True)
