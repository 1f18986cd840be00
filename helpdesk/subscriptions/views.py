"""Public subscription pages (no login): one-click unsubscribe (RFC 8058), the preference page, the
double opt-in confirmation.

- /subscriptions/unsubscribe/<token>: a POST (the mail client's one-click POST, body
  "List-Unsubscribe=One-Click", or the button of the GET page) unsubscribes the link's topic at
  once. No login, no cookies, no CSRF token: the signed URL is the credential (the endpoint is in
  helpdesk.CSRF_EXEMPT). The answer is a short page and never sets a cookie. A GET only shows a
  confirmation page with that button (mail scanners open links).
- /subscriptions/preferences/<token>: the subscriber's topics as checkboxes (normal CSRF: our own
  form). A lead's new opt-in is still confirmed by mail (services.change does it).
- /subscriptions/confirm/<token>: the double opt-in link. A GET shows a Confirm button, the POST
  confirms.

Also the agents' "Subscriptions" card of the customer and lead pages (the template global
`subscription_card`, used by templates/subscriptions/_card.html).
"""
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _

from ..customers.models import Customer
from ..errors import DomainError
from ..extensions import db
from ..leads.models import Lead
from . import forms as F
from . import services, tokens

bp = Blueprint("subscriptions", __name__, url_prefix="/subscriptions")


def _lang():
    return str(get_locale() or "id")


def _exists(kind, sid):
    return db.session.get(Lead if kind == "lead" else Customer, sid) is not None


def _bad_link(expired=False):
    return render_template("subscriptions/bad_link.html", expired=expired, lang=_lang()), 400


def _page(template, **ctx):
    return render_template(template, lang=_lang(), TOPIC_LABELS=F.TOPIC_LABELS, STATUS_LABELS=F.STATUS_LABELS,
                           **ctx)


@bp.route("/unsubscribe/<token>", methods=["GET", "POST"])
def unsubscribe(token):
    """GET: a confirmation page (changes nothing). POST: unsubscribe the link's topic (one click)."""
    try:
        kind, sid, topic, _delivery = tokens.load_unsubscribe_token(token)
    except tokens.InvalidToken:
        return _bad_link()
    if not _exists(kind, sid) or topic not in F.TOPIC_LABELS:
        return _bad_link()
    prefs = services.preferences_url(kind, sid)
    if request.method != "POST":
        return _page("subscriptions/unsubscribe.html", done=False, topic=topic, token=token, preferences_url=prefs)
    try:
        services.unsubscribe_token(token, method="one-click", ip=request.remote_addr)
    except (tokens.InvalidToken, DomainError):
        db.session.rollback()
        return _bad_link()
    db.session.commit()
    return _page("subscriptions/unsubscribe.html", done=True, topic=topic, token=token, preferences_url=prefs)


@bp.route("/preferences/<token>", methods=["GET", "POST"])
def preferences(token):
    """The subscriber's topics as checkboxes, saved with services.change (preference page, form)."""
    try:
        kind, sid = tokens.load_preferences_token(token)
    except tokens.InvalidToken:
        return _bad_link()
    if not _exists(kind, sid):
        return _bad_link()
    form = F.topics_form(kind)
    if request.method == "POST":
        if not form.validate():
            return _preferences_page(kind, sid, token, form, _("Please correct the fields marked below."), 400)
        try:
            services.change(kind, sid, form.wanted(), source="preference_page", method="form",
                            ip=request.remote_addr)
        except DomainError as exc:
            db.session.rollback()
            return _preferences_page(kind, sid, token, form, exc.message, 400)
        db.session.commit()
        flash(_("Your choices are saved."), "success")
        if "pending" in services.state(kind, sid).values():
            flash(_("We sent you an email: please confirm your subscription with its link."), "info")
        return redirect(url_for("subscriptions.preferences", token=token, lang=_lang()), 303)
    F.fill(form, services.state(kind, sid))
    return _preferences_page(kind, sid, token, form)


def _preferences_page(kind, sid, token, form, message=None, status=200):
    return _page("subscriptions/preferences.html", form=form, kind=kind, token=token, message=message,
                 state=services.state(kind, sid)), status


@bp.route("/confirm/<token>", methods=["GET", "POST"])
def confirm(token):
    """The double opt-in link: a GET shows the Confirm button, the POST confirms."""
    try:
        kind, sid, asked = tokens.load_confirm_token(token)
    except tokens.InvalidToken as exc:
        return _bad_link(exc.expired)
    if not _exists(kind, sid):
        return _bad_link()
    asked = [t for t in asked if t in F.TOPIC_LABELS]
    form = F.ButtonForm()
    if request.method == "POST":
        if not form.validate():
            return _page("subscriptions/confirm.html", form=form, token=token, topics=asked, done=None,
                         message=_("This page was open for too long. Please press Confirm again.")), 400
        try:
            kind, sid, done = services.confirm(token, ip=request.remote_addr)
        except (tokens.InvalidToken, DomainError):
            db.session.rollback()
            return _bad_link()
        db.session.commit()
        return _page("subscriptions/confirm.html", form=form, token=token, topics=asked, done=done,
                     state=services.state(kind, sid), preferences_url=services.preferences_url(kind, sid))
    return _page("subscriptions/confirm.html", form=form, token=token, topics=asked, done=None)


@bp.app_template_global()
def subscription_card(kind, sid):
    """What the agents' Subscriptions card shows: each topic's state and the consent log."""
    return {"state": services.state(kind, sid), "history": services.history(kind, sid, limit=50),
            "TOPIC_LABELS": F.TOPIC_LABELS, "STATUS_LABELS": F.STATUS_LABELS, "ACTION_LABELS": F.ACTION_LABELS,
            "SOURCE_LABELS": F.SOURCE_LABELS}
