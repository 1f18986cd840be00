"""Customer forms."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, SelectField, StringField
from wtforms.validators import DataRequired, Email, Length, Optional


class CustomerForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    phone = StringField(_l("Phone"), validators=[Optional(), Length(max=40)])
    kind = SelectField(_l("Kind"), choices=[("b2c", "B2C"), ("b2b", "B2B")])
    language = SelectField(_l("Language"), choices=[("", _l("Unknown")), ("id", "Bahasa Indonesia"), ("en", "English")],
                           validators=[Optional()])
    npwp = StringField(_l("NPWP (tax ID, B2B)"), validators=[Optional(), Length(max=32)])
    organisation_id = SelectField(_l("Organisation"), choices=[], validate_choice=False, validators=[Optional()])


class AddEmailForm(FlaskForm):
    email = EmailField(_l("Add an email address"), validators=[DataRequired(), Email(), Length(max=254)])


class OrganisationForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    npwp = StringField(_l("NPWP (tax ID)"), validators=[Optional(), Length(max=32)])
    contacts_see_all_tickets = BooleanField(_l("Contact persons may see all of the organisation's tickets"))


class MergeCustomerForm(FlaskForm):
    target_id = StringField(_l("Merge into customer id or email"), validators=[DataRequired()])
