"""Login, two-factor, password and account forms."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length, Optional, Regexp

from .services import MIN_PASSWORD


class LoginForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[DataRequired(), Email()])
    password = PasswordField(_l("Password"), validators=[DataRequired()])
    next = HiddenField()


class CodeForm(FlaskForm):
    """A 6-digit code from the authenticator app (spaces allowed)."""

    code = StringField(_l("6-digit code"), validators=[
        DataRequired(), Regexp(r"^\s*\d{3}\s?\d{3}\s*$", message=_l("Type the 6 digits shown in your app."))])


class DisableTwoFactorForm(FlaskForm):
    password = PasswordField(_l("Current password"), validators=[DataRequired()])


class ForgotPasswordForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[DataRequired(), Email()])


class SetPasswordForm(FlaskForm):
    password = PasswordField(_l("New password"), validators=[DataRequired(), Length(min=MIN_PASSWORD)])
    confirm = PasswordField(_l("Repeat the new password"), validators=[
        DataRequired(), EqualTo("password", message=_l("The two passwords are not the same."))])


class AccountForm(FlaskForm):
    locale = SelectField(_l("Language"), choices=[("", _l("Browser default")), ("id", "Bahasa Indonesia"),
                                                  ("en", "English")], validators=[Optional()])
    current_password = PasswordField(_l("Current password"), validators=[Optional()])
    new_password = PasswordField(_l("New password"), validators=[Optional(), Length(min=MIN_PASSWORD)])
