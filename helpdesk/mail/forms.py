"""Forms of the email channel's admin pages (mailboxes, blocklist, inbound log) and the ticket's Cc list."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, EmailField, IntegerField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Email, Length, NumberRange, Optional

from .models import RESULTS

SECURITY_CHOICES = [("ssl", _l("SSL/TLS (port 993)")), ("starttls", _l("STARTTLS (port 143)")),
                    ("plain", _l("Plain, unencrypted (loopback host only)"))]
AFTER_FETCH_CHOICES = [("flag", _l("Mark as read (\\Seen)")), ("move", _l("Move to the processed folder"))]
REASONS = ("auto_reply", "bounce", "spam", "automated", "own_bounce", "own_mail", "unsubscribe")


class MailboxForm(FlaskForm):
    """A support mailbox. The password is never shown back: blank on edit keeps the stored one."""
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=60)])
    host = StringField(_l("IMAP host"), validators=[DataRequired(), Length(max=255)])
    port = IntegerField(_l("Port"), validators=[Optional(), NumberRange(min=1, max=65535)],
                        description=_l("Empty: 993 with SSL, else 143."))
    security = SelectField(_l("Security"), choices=SECURITY_CHOICES, default="ssl")
    username = StringField(_l("User name"), validators=[DataRequired(), Length(max=255)])
    password = PasswordField(_l("Password"), validators=[Length(max=500)],
                             description=_l("Stored encrypted. Leave empty to keep the stored password."))
    password_env = StringField(_l("Or: name of an environment variable holding the password"),
                               validators=[Length(max=80)],
                               description=_l("For example SUPPORT_IMAP_PASSWORD. Then no password is stored."))
    folder = StringField(_l("Folder"), default="INBOX", validators=[DataRequired(), Length(max=255)])
    after_fetch = SelectField(_l("After fetching"), choices=AFTER_FETCH_CHOICES, default="flag")
    processed_folder = StringField(_l("Processed folder (optional)"), validators=[Length(max=255)])
    quarantine_folder = StringField(_l("Quarantine folder (optional)"), validators=[Length(max=255)],
                                    description=_l("Messages that cannot be processed are moved here."))
    queue_id = SelectField(_l("Queue for new tickets"), coerce=int, choices=[])
    from_address = EmailField(_l("From address of replies"), validators=[DataRequired(), Email(), Length(max=254)])
    from_name = StringField(_l("From name (optional)"), validators=[Length(max=120)])
    plus_addressing = BooleanField(_l("Plus-addressing (support+ticket@...) reaches this mailbox"))
    active = BooleanField(_l("Active"), default=True)


class BlockForm(FlaskForm):
    pattern = StringField(_l("Address or domain"), validators=[DataRequired(), Length(max=255)],
                          description=_l("spam@example.com, or example.com for the domain and its subdomains."))
    note = StringField(_l("Note (optional)"), validators=[Length(max=300)])


class LogFilterForm(FlaskForm):
    """The inbound log's filters (GET, no CSRF token)."""

    class Meta:
        csrf = False

    result = SelectField(_l("Result"), choices=[("", _l("Any"))] + [(r, r) for r in RESULTS], default="")
    reason = SelectField(_l("Reason"), choices=[("", _l("Any"))] + [(r, r) for r in REASONS], default="")
    mailbox = SelectField(_l("Mailbox"), choices=[], default="")
    sender = StringField(_l("From starts with"), validators=[Length(max=320)])
    subject = StringField(_l("Subject contains"), validators=[Length(max=300)])
    date_from = DateField(_l("From date"), validators=[Optional()])
    date_to = DateField(_l("To date"), validators=[Optional()])


class CcForm(FlaskForm):
    cc = StringField(_l("Cc addresses"), validators=[Length(max=4000)],
                     description=_l("Comma separated. Agent replies go to these addresses in Cc."))
