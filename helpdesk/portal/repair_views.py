"""Cashback claims, repair quotes and invoices on the customer portal (helpdesk/portal/views.py
imports this module so the routes join the portal blueprint).

- GET /portal/quote/<token>: the signed link of the quote mail. It shows the quote (lines, total,
  status) with Approve and Decline buttons and records nothing (mail scanners prefetch links); the
  form's POST decides (repairs.services.customer_decide with the link's quote version). An expired
  or forged link is a 400 page, a link to an older version of the quote a 409 page.
- On the signed-in customer's ticket page (template global `portal_repairs`): the claim card with
  "Request cashback" while the guarantee can be claimed, the quote waiting for the customer's
  answer (POST /portal/tickets/<number>/quote), and the ticket's invoices.
- GET /portal/invoices/<id>: the customer's own invoice (others: 404).
"""
from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import AnyOf, InputRequired, Length, Optional

from ..billing import methods
from ..billing import services as billing
from ..claims import services as claims
from ..errors import Conflict, DomainError, NotFound
from ..extensions import db
from ..repairs import services as repairs
from ..webform.tokens import InvalidToken
from . import services
from .views import bp, customer_required

# What the customer sees of a quote: never a draft or the billing team's review.
CUSTOMER_QUOTE_STATUSES = ("pending_customer", "awaiting_payment", "in_work", "completed", "declined")

# Statuses in the customer's words.
CLAIM_STATUS = {
    "requested": _l("Received: our technical team is checking it"),
    "verified": _l("Verified: our billing team is setting the amount"),
    "approved": _l("Approved: the cashback will be paid shortly"),
    "paid": _l("Paid"),
    "rejected": _l("Not approved"),
}
QUOTE_STATUS = {
    "pending_customer": _l("Waiting for your answer"),
    "awaiting_payment": _l("Approved: waiting for your payment"),
    "in_work": _l("Approved: we are working on the repair"),
    "completed": _l("Repair completed"),
    "declined": _l("Declined"),
}


class CashbackForm(FlaskForm):
    note = TextAreaField(_l("What went wrong? (optional)"), validators=[Optional(), Length(max=claims.NOTE_MAX)])


class DecisionForm(FlaskForm):
    """Approve or decline (the button pressed sends `decision`); a reason when declining."""
    decision = StringField(validators=[InputRequired(_l("Please approve or decline.")),
                                       AnyOf(("approve", "decline"), message=_l("Please approve or decline."))])
    reason = TextAreaField(_l("Why do you decline? (optional)"), validators=[Optional(), Length(max=2000)])


@bp.context_processor
def _labels():
    return {"CLAIM_STATUS": CLAIM_STATUS, "QUOTE_STATUS": QUOTE_STATUS,
            "PAYMENT_METHOD_LABEL": methods.label}


def _signed_in_customer_id():
    if current_user.is_authenticated and str(current_user.get_id()).startswith("c:"):
        return current_user.id
    return None


def _invoice_of(quote):
    return billing.get_invoice(quote.invoice_id) if quote is not None and quote.invoice_id else None


def _customer_quote(ticket_id):
    """The ticket's newest quote the customer may see, or None."""
    for quote in repairs.quotes_of(ticket_id):
        if quote.status in CUSTOMER_QUOTE_STATUSES:
            return quote
    return None


@bp.app_template_global("portal_repairs")
def portal_repairs(ticket, link_token=None):
    """For the portal's ticket page: the ticket's claim, its quote for the customer and its invoices.
    Actions (forms) only for the signed-in customer of the ticket."""
    customer_id = _signed_in_customer_id()
    owner = customer_id is not None and customer_id == ticket.customer_id
    all_claims = claims.claims_of(ticket.id)  # newest first: the live one, else the last rejected one
    claim = next((c for c in all_claims if c.status != "rejected"), all_claims[0] if all_claims else None)
    live = claim is not None and claim.status != "rejected"
    quote = _customer_quote(ticket.id)
    invoices = [inv for inv in billing.invoices_of(ticket.customer_id) if inv.ticket_id == ticket.id]
    return {
        "claim": claim,
        "can_request": owner and not live and claims.claimable(ticket) and ticket.merged_into_id is None,
        "claim_form": CashbackForm(formdata=None),
        "quote": quote,
        "can_decide": owner and quote is not None and quote.status == "pending_customer",
        "decision_form": DecisionForm(formdata=None),
        "invoices": invoices,
        "owner": owner,
    }


# ---------------------------------------------------------------- the signed quote link

def _quote_page(token, form=None, quote=None, error=None, status=200, preset=None):
    invoice = _invoice_of(quote) if quote is not None else None
    return render_template("portal/quote.html", token=token, quote=quote, invoice=invoice, error=error,
                           form=form or DecisionForm(formdata=None), preset=preset), status


@bp.route("/quote/<token>", methods=["GET", "POST"])
def quote_link(token):
    """The quote of a signed mail link: GET shows it (never acts), the form's POST decides."""
    try:
        quote_id, customer_id, version = repairs.load_token(token)
    except InvalidToken as exc:
        return _quote_page(token, error=_("This link has expired. Sign in to see your requests and the quote.")
                           if exc.expired else _("This link is not valid. Sign in to see your requests."),
                           status=400)
    try:
        quote = repairs.quote_for_customer(quote_id, customer_id, version)
    except NotFound:
        abort(404)
    except Conflict as exc:
        return _quote_page(token, error=exc.message, status=409)
    if quote.status not in CUSTOMER_QUOTE_STATUSES:
        return _quote_page(token, error=_("This quote has changed since this link was sent. Use the newest email "
                                          "or your portal."), status=409)
    if request.method == "GET":
        preset = request.args.get("d") if request.args.get("d") in ("approve", "decline") else None
        return _quote_page(token, quote=quote, preset=preset)
    form = DecisionForm()
    if not form.validate():
        return _quote_page(token, form=form, quote=quote, status=400)
    try:
        repairs.customer_decide(quote.id, customer_id, form.decision.data, form.reason.data, version=version)
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return _quote_page(token, form=form, quote=repairs.get_quote(quote_id), status=exc.status_code)
    db.session.commit()
    flash(_("Thank you. You approved the quote.") if form.decision.data == "approve"
          else _("You declined the quote. Our team will get back to you."), "success")
    return redirect(url_for("portal.quote_link", token=token), 303)


# ---------------------------------------------------------------- the signed-in customer's ticket

def _to_ticket(ticket):
    return redirect(url_for("portal.ticket", number=ticket.number) + "#repairs", 303)


@bp.route("/tickets/<int:number>/cashback", methods=["POST"])
@customer_required
def request_cashback(number):
    """The customer asks for the cashback of their ticket's guarantee."""
    ticket = services.get_ticket(current_user.id, number)
    form = CashbackForm()
    if not form.validate():
        flash(" ".join(form.note.errors) or _("Please check the form."), "error")
        return _to_ticket(ticket)
    try:
        claims.request_claim_by_customer(ticket.id, current_user.id, form.note.data)
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return _to_ticket(ticket)
    db.session.commit()
    flash(_("We received your cashback request. We will keep you posted by email."), "success")
    return _to_ticket(ticket)


@bp.route("/tickets/<int:number>/quote", methods=["POST"])
@customer_required
def decide_quote(number):
    """The customer approves or declines the quote waiting on their ticket."""
    ticket = services.get_ticket(current_user.id, number)
    form = DecisionForm()
    quote = repairs.live_quote(ticket.id)
    if quote is None or quote.status != "pending_customer":
        flash(_("This quote is no longer waiting for your answer."), "error")
        return _to_ticket(ticket)
    if not form.validate():
        flash(" ".join(form.decision.errors + form.reason.errors), "error")
        return _to_ticket(ticket)
    try:
        repairs.customer_decide(quote.id, current_user.id, form.decision.data, form.reason.data)
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return _to_ticket(ticket)
    db.session.commit()
    if form.decision.data == "approve":
        invoice = _invoice_of(quote)
        flash(_("Thank you. You approved the quote: invoice %(number)s.", number=invoice.number), "success")
        return redirect(url_for("portal.invoice", invoice_id=invoice.id), 303)
    flash(_("You declined the quote. Our team will get back to you."), "success")
    return _to_ticket(ticket)


# ---------------------------------------------------------------- invoices

@bp.route("/invoices/<int:invoice_id>")
@customer_required
def invoice(invoice_id):
    """The customer's own invoice: lines, total, paid, status, due date."""
    try:
        inv = billing.get_invoice(invoice_id)
    except NotFound:
        abort(404)
    if inv.customer_id != current_user.id:
        abort(404)
    payments = [p for p in inv.payments if p.status == "confirmed"]
    return render_template("portal/invoice.html", invoice=inv, payments=payments,
                           remaining=max(0, inv.total - inv.amount_paid))
