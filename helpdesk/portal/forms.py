"""Portal forms: the sign-in request, password sign-in, buttons (sign in, solve, reopen), a reply, the profile."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import MultipleFileField
from wtforms import BooleanField, EmailField, PasswordField, SelectField, StringField, TelField, TextAreaField
from wtforms.validators import DataRequired, Email, Length, Optional


class RequestLinkForm(FlaskForm):
    email = EmailField(_l("Your email address"), filters=[lambda v: v.strip() if isinstance(v, str) else v],
                       validators=[DataRequired(_l("Please give your email address.")),
                                   Email(_l("This is not a valid email address.")), Length(max=254)])


class ButtonForm(FlaskForm):
    """A POST with only the CSRF token: sign in, this is solved, reopen, log out."""


class ReplyForm(FlaskForm):
    body = TextAreaField(_l("Your message"), validators=[DataRequired(_l("Please write a message.")),
                                                        Length(max=50_000)])
    attachments = MultipleFileField(_l("Attachments (optional)"))


class ProfileForm(FlaskForm):
    name = StringField(_l("Your name"), filters=[lambda v: v.strip() if isinstance(v, str) else v],
                       validators=[DataRequired(_l("Please tell us your name.")), Length(max=200)])
    phone = TelField(_l("Phone or WhatsApp (optional)"), validators=[Optional(), Length(max=40)])
    language = SelectField(_l("Language of our emails"), choices=[("id", "Bahasa Indonesia"), ("en", "English")])


class AddEmailForm(FlaskForm):
    email = EmailField(_l("Another email address"), filters=[lambda v: v.strip() if isinstance(v, str) else v],
                       validators=[DataRequired(_l("Please give your email address.")),
                                   Email(_l("This is not a valid email address.")), Length(max=254)])


class PasswordLoginForm(FlaskForm):
    email = EmailField(_l("Your email address"), filters=[lambda v: v.strip() if isinstance(v, str) else v],
                       validators=[DataRequired(_l("Please give your email address.")), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(_l("Please type your password."))])


class SetPasswordForm(FlaskForm):
    password = PasswordField(_l("New password (leave empty to sign in by email link only)"),
                             validators=[Optional(), Length(max=200)])


class DeletionForm(FlaskForm):
    """Asking for deletion of one's data needs an explicit confirmation."""
    confirm = BooleanField(_l("I understand: my account will be anonymised and I will no longer be able to sign in."),
                           validators=[DataRequired(_l("Please tick the box to confirm."))])
