"""The public "request an offer" form (/offer): no login, a lead for marketing.

The same protections as the support form (helpdesk/webform), reused rather than copied: the
session CSRF token, a honeypot field, the per-IP and per-email rate limits (counted apart from
the support form's), a signed and expiring link to the thank-you page, and the app's CSP / frame
headers (this page is never framed). The view is thin: validate, check the limits, call
leads.services.capture(channel="offer_form"), commit, redirect. The answer is the same whether the
person was already a lead or not.
"""
from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, HiddenField, SelectMultipleField, StringField, TelField, TextAreaField
from wtforms.validators import DataRequired, Email, Length, Optional

from ..customers.phone import InvalidPhone, normalise_phone
from ..errors import DomainError
from ..extensions import db
from ..warranty.admin_forms import LINE_LABELS
from ..subscriptions import services as subscriptions
from ..subscriptions.forms import PROMOTIONS_OPT_IN, PROMOTIONS_OPT_IN_HELP
from ..webform import tokens
from ..webform.views import count_submission, over_limit
from . import services
from .models import LEAD_SOURCES, PRODUCT_LINES

bp = Blueprint("offer", __name__, url_prefix="/offer")

SCOPE = "offer"  # the rate limits' keys: the offer form counts apart from the support form
DEFAULT_SOURCE = "website"
FIELDS = ("name", "company", "email", "phone", "product_lines", "campaign", "message")


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class OfferForm(FlaskForm):
    """Name, company, email, phone, product lines, message, campaign / promo code, and a honeypot."""

    name = StringField(_l("Your name"), filters=[_strip],
                       validators=[DataRequired(_l("Please tell us your name.")), Length(max=200)])
    company = StringField(_l("Company (optional)"), filters=[_strip], validators=[Optional(), Length(max=200)])
    email = EmailField(_l("Your email address"), filters=[_strip],
                       validators=[Optional(), Email(_l("This is not a valid email address.")), Length(max=254)],
                       description=_l("We send the offer here."))
    phone = TelField(_l("Phone or WhatsApp"), filters=[_strip], validators=[Optional(), Length(max=40)],
                     description=_l("Give an email address, a phone number, or both."))
    product_lines = SelectMultipleField(_l("What are you interested in?"),
                                        choices=[(line, LINE_LABELS[line]) for line in PRODUCT_LINES],
                                        validators=[Optional()])
    message = TextAreaField(_l("Your message (optional)"), validators=[Optional(), Length(max=5000)],
                            description=_l("For example: what your business does, what you need, and when."))
    campaign = StringField(_l("Campaign or promo code (optional)"), filters=[_strip],
                           validators=[Optional(), Length(max=80)])
    promotions = BooleanField(PROMOTIONS_OPT_IN, description=PROMOTIONS_OPT_IN_HELP)  # unticked: opt-in only
    source = HiddenField()
    # Honeypot: hidden from people, filled in by bots.
    fax_number = StringField(_l("Leave this field empty"), validators=[Optional()])

    def validate(self, extra_validators=None):
        ok = super().validate(extra_validators)
        if not (self.email.data or self.phone.data):
            self.email.errors = [*self.email.errors, _("Please give an email address or a phone number.")]
            ok = False
        return ok


def _source(value):
    """The source the page was opened with (?source=), when it is one we know; else "website"."""
    value = (value or "").strip()
    return value if value in LEAD_SOURCES else DEFAULT_SOURCE


def _lang():
    return str(get_locale() or "id")


def _render(form, status=200, message=None):
    return render_template("leads/offer_form.html", form=form, message=message, lang=_lang()), status


def _contact_key(form):
    """What the per-person limit counts: the email address, else the phone number (+62..., however
    it was written; as typed when it is not a phone number, which the capture refuses anyway)."""
    if form.email.data:
        return form.email.data
    try:
        return normalise_phone(form.phone.data) or ""
    except InvalidPhone:
        return form.phone.data or ""


@bp.route("", methods=["GET", "POST"])
def form():
    """GET shows the form (campaign from ?campaign= or ?promo=, source from ?source=); a POST
    validates, checks the limits, captures the lead and redirects to the thank-you page."""
    form = OfferForm()
    if request.method != "POST":
        form.campaign.data = (request.args.get("campaign") or request.args.get("promo") or "").strip()[:80]
        form.source.data = _source(request.args.get("source"))
        return _render(form)
    form.source.data = _source(form.source.data)
    if not form.validate():
        return _render(form, 200, _("Please correct the fields marked below."))
    if (form.fax_number.data or "").strip():  # honeypot: pretend it worked, create nothing
        return redirect(url_for("offer.done", token=tokens.make_offer_done_token(False), lang=_lang()), 303)
    message = over_limit(_contact_key(form), SCOPE)
    if message:
        return _render(form, 429, message)
    try:
        lead, _created = services.capture(name=form.name.data, company=form.company.data, email=form.email.data,
                                          phone=form.phone.data, source=form.source.data, campaign=form.campaign.data,
                                          product_lines=form.product_lines.data or [], notes=form.message.data,
                                          channel="offer_form")
        if form.promotions.data and lead.email:  # double opt-in: nothing is sent until the mailed link is confirmed
            subscriptions.change("lead", lead.id, {"promotions": True}, source="offer_form", method="checkbox",
                                 ip=request.remote_addr)
    except DomainError as exc:
        db.session.rollback()
        name = exc.details.get("field")
        field = getattr(form, name, None) if name in FIELDS else None
        if field is not None:
            field.errors = [*field.errors, exc.message]
        return _render(form, 200, exc.message)
    db.session.commit()
    count_submission(_contact_key(form), SCOPE)
    return redirect(url_for("offer.done", token=tokens.make_offer_done_token(True), lang=_lang()), 303)


@bp.route("/done/<token>")
def done(token):
    """The thank-you page, reached only through the signed, short-lived link of a submission."""
    try:
        tokens.check_offer_done_token(token)
    except tokens.InvalidToken:
        return render_template("leads/offer_done.html", expired=True, lang=_lang()), 400
    return render_template("leads/offer_done.html", expired=False, lang=_lang())
