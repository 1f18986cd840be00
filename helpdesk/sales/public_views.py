"""The customer's signed offer link (no sign-in).

- GET /offers/view/<token>: the offer (company, lines, totals, validity) with Accept and Decline
  (an optional reason). GET never acts (mail scanners prefetch links).
- POST /offers/view/<token>: services.customer_decide with the link's offer version. Accepted: the
  order is placed ("your order ORD/... is placed, an invoice follows"); declined: thanks.
- GET /offers/view/<token>/pdf: the offer as a PDF.
A forged or unreadable link is a 400 page; an expired offer, a link to an older version of the
offer or an offer already answered is a 409 page (never a 500).
"""
from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ..errors import Conflict, DomainError, NotFound
from ..extensions import db
from ..timeutil import utcnow
from ..warranty import rules
from ..webform.tokens import InvalidToken
from . import services
from .offer_forms import DecisionForm
from .offer_views import company_of, order_of, pdf_response, print_page

bp = Blueprint("offer_link", __name__, url_prefix="/offers/view")


def _error(message, status):
    return render_template("sales/offer_link_error.html", error=message), status


def _load(token):
    """(offer, version) of the link, or an error response."""
    try:
        offer_id, version = services.load_token(token)
    except InvalidToken:
        return None, _error(_("This link is not valid. Please use the link in our latest email."), 400)
    try:
        offer = services.offer_for_link(offer_id, version)
    except NotFound:
        return None, _error(_("This offer no longer exists."), 404)
    except Conflict as exc:
        return None, _error(exc.message, 409)
    if offer.status == "draft":  # taken back to draft after sending: the link is outdated
        return None, _error(_("This offer has changed since this link was sent. Use the newest email."), 409)
    return (offer, version), None


def _page(token, offer, form=None, status=200):
    expired = offer.status == "sent" and rules.complaint_day(utcnow()) > offer.valid_until
    return print_page(offer, template="sales/offer_link.html", token=token, order=order_of(offer),
                      form=form or DecisionForm(formdata=None), expired=expired), status


@bp.route("/<token>", methods=["GET", "POST"])
def view(token):
    loaded, error = _load(token)
    if error is not None:
        return error
    offer, version = loaded
    if request.method == "GET":
        return _page(token, offer)
    form = DecisionForm()
    if not form.validate():
        return _page(token, offer, form=form, status=400)
    try:
        services.customer_decide(offer.id, version, form.decision.data, form.reason.data)
    except DomainError as exc:
        db.session.rollback()
        if exc.status_code == 409:  # customer_decide marks an expired offer: keep that change
            _record_expiry()
        return _error(exc.message, exc.status_code if exc.status_code in (400, 404, 409) else 400)
    db.session.commit()  # the page shows the outcome (the order placed, or the thanks)
    return redirect(url_for("offer_link.view", token=token), 303)


def _record_expiry():
    """The offer's validity passed: it is expired (as the hourly sweep would do)."""
    try:
        services.expire_offers()
        db.session.commit()
    except Exception:  # noqa: BLE001  (best effort: the sweep does it within the hour)
        db.session.rollback()


@bp.route("/<token>/pdf")
def pdf(token):
    loaded, error = _load(token)
    if error is not None:
        return error
    offer, _version = loaded
    return pdf_response(offer, company_of())
