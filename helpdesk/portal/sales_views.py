"""The customer's purchases on the portal (routes on the portal blueprint; helpdesk/__init__.py
imports this module before the blueprint is registered).

- GET /portal/purchases ("My purchases"): the signed-in customer's offers that were sent to them
  (sent, accepted, declined, expired; with the signed link to view the offer and its PDF), their
  orders (number, status, total) and their invoices (number, status, total, due date, link).
- GET /portal/invoices/<id>/pdf: the PDF of the customer's own invoice (another's or none: 404).
"""
from flask import abort, current_app, render_template
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import or_, select

from ..billing import services as billing
from ..billing.pdf import pdf_response
from ..errors import NotFound
from ..extensions import db
from ..leads.models import Lead
from ..sales import services as sales
from ..sales.models import Offer, Order
from ..timeutil import utcnow
from ..warranty import rules
from .views import bp, customer_required

# what the customer sees of offers: never a draft or a cancelled one
CUSTOMER_OFFER_STATUSES = ("sent", "accepted", "declined", "expired")
OFFER_STATUS = {"sent": _l("Waiting for your answer"), "accepted": _l("Accepted"), "declined": _l("Declined"),
                "expired": _l("Expired")}
LIST_LIMIT = 100


def _offers(customer_id):
    """The customer's offers, also those made to the lead they were before becoming a customer."""
    leads = select(Lead.id).where(Lead.customer_id == customer_id)
    return db.session.execute(
        select(Offer).where(or_(Offer.customer_id == customer_id, Offer.lead_id.in_(leads)),
                            Offer.status.in_(CUSTOMER_OFFER_STATUSES))
        .order_by(Offer.id.desc()).limit(LIST_LIMIT)).scalars().all()


def _orders(customer_id):
    return db.session.execute(select(Order).where(Order.customer_id == customer_id)
                              .order_by(Order.id.desc()).limit(LIST_LIMIT)).scalars().all()


@bp.route("/purchases")
@customer_required
def purchases():
    """My purchases: offers, orders and invoices, newest first."""
    customer_id = current_user.id
    offers = [{"offer": o, "url": sales.link_url(o)} for o in _offers(customer_id)]
    invoices = billing.invoices_of(customer_id)[:LIST_LIMIT]
    return render_template("portal/purchases.html", offers=offers, orders=_orders(customer_id), invoices=invoices,
                           today=rules.complaint_day(utcnow()), OFFER_STATUS=OFFER_STATUS)


@bp.route("/invoices/<int:invoice_id>/pdf")
@customer_required
def invoice_pdf(invoice_id):
    """The customer's own invoice as a PDF (a download); anyone else's is not found."""
    try:
        invoice = billing.get_invoice(invoice_id)
    except NotFound:
        abort(404)
    if invoice.customer_id != current_user.id:
        abort(404)
    return pdf_response(invoice, current_app.jinja_env.globals["company"](), download=True)
