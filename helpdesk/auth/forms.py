"""Login and account forms."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField, SelectField
from wtforms.validators import DataRequired, Email, Length, Optional


class LoginForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[DataRequired(), Email()])
    password = PasswordField(_l("Password"), validators=[DataRequired()])
    next = HiddenField()


class AccountForm(FlaskForm):
    locale = SelectField(_l("Language"), choices=[("", _l("Browser default")), ("id", "Bahasa Indonesia"),
                                                  ("en", "English")], validators=[Optional()])
    current_password = PasswordField(_l("Current password"), validators=[Optional()])
    new_password = PasswordField(_l("New password"), validators=[Optional(), Length(min=10)])
