"""The public web form: the customer's words, not the desk's."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import MultipleFileField
from wtforms import BooleanField, EmailField, HiddenField, SelectField, StringField, TelField, TextAreaField
from wtforms.validators import DataRequired, Email, Length, Optional

from ..subscriptions.forms import PROMOTIONS_OPT_IN, PROMOTIONS_OPT_IN_HELP
from .services import TOPICS

TOPIC_LABELS = {
    "website": _l("A problem with my website"),
    "domain_hosting": _l("Domain or hosting"),
    "billing": _l("Billing or payment"),
    "buying": _l("Buying something or asking for an offer"),
    "other": _l("Something else"),
}


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class WebForm(FlaskForm):
    """Name, email, phone, topic, website, subject, message, attachments, and a honeypot."""

    name = StringField(_l("Your name"), filters=[_strip], validators=[DataRequired(_l("Please tell us your name.")),
                                                    Length(max=200)])
    email = EmailField(_l("Your email address"), filters=[_strip], validators=[DataRequired(_l("Please give your email address.")),
                                                             Email(_l("This is not a valid email address.")),
                                                             Length(max=254)],
                       description=_l("We send the confirmation and our answers here."))
    phone = TelField(_l("Phone or WhatsApp (optional)"), filters=[_strip], validators=[Optional(), Length(max=40)])
    topic = SelectField(_l("What is it about?"),
                        choices=[("", _l("Choose one"))] + [(t, TOPIC_LABELS[t]) for t in TOPICS],
                        validators=[DataRequired(_l("Please choose what your question is about."))])
    website = StringField(_l("Which website or domain? (optional)"), filters=[_strip], validators=[Optional(), Length(max=255)],
                          description=_l("For example: tokosaya.co.id"))
    subject = StringField(_l("Subject"), filters=[_strip], validators=[DataRequired(_l("Please write a short subject.")),
                                                     Length(max=300)])
    message = TextAreaField(_l("Your message"), validators=[DataRequired(_l("Please describe what you need.")),
                                                            Length(max=50_000)])
    attachments = MultipleFileField(_l("Attachments (optional)"))
    promotions = BooleanField(PROMOTIONS_OPT_IN, description=PROMOTIONS_OPT_IN_HELP)  # unticked: opt-in only
    # Honeypot: hidden from people, filled in by bots.
    fax_number = StringField(_l("Leave this field empty"), validators=[Optional()])


class EmbedForm(WebForm):
    """The framed variant: no session, so a signed form token instead of the session CSRF token."""

    class Meta:
        csrf = False

    form_token = HiddenField()
