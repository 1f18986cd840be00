"""Billing's pages (the billing role only; admin does not imply it: 403 for everyone else).

- /billing: the queue: cashback claims to approve or pay (with their forms, as billing may not
  see the claim's ticket), repair quotes waiting for billing, payments waiting for confirmation,
  and open invoices (overdue first).
- /billing/invoices: the invoices, filtered by status; /billing/invoices/<id>: one invoice
  (printable), its payments, and the forms to record, confirm or reject a payment and to void it.
Views are thin: helpdesk.billing.services holds the rules.
"""
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy import select
from sqlalchemy.orm import aliased, selectinload

from ..auth.models import User
from ..claims.forms import ClaimApproveForm, ClaimPayForm, ClaimRejectForm
from ..claims.models import CashbackClaim
from ..claims.views import bound, form_error, form_for, parse_amount
from ..customers.models import Customer
from ..errors import DomainError, Forbidden
from ..extensions import db
from ..repairs.models import RepairQuote
from ..tickets.models import Ticket
from ..tickets.services import can_see
from ..timeutil import utcnow
from ..warranty import rules
from ..warranty.models import OwnedItem, Product
from . import methods, services
from .forms import ConfirmPaymentForm, PaymentForm, RejectPaymentForm, VoidForm
from .models import INVOICE_STATUSES, Invoice, Payment

bp = Blueprint("billing", __name__, url_prefix="/billing")

PAYMENT_STATUS_LABELS = {"pending": _l("Waiting for confirmation"), "confirmed": _l("Confirmed"),
                         "rejected": _l("Rejected")}
LIST_LIMIT = 200


@bp.before_request
@login_required
def _billing_only():
    if not current_user.has_role("billing"):
        raise Forbidden(_("Only billing can use these pages."))


@bp.app_context_processor
def _nav():
    def billing_visible():
        return bool(getattr(current_user, "is_authenticated", False) and hasattr(current_user, "has_role")
                    and current_user.has_role("billing"))

    return {"billing_visible": billing_visible, "PAYMENT_STATUS_LABELS": PAYMENT_STATUS_LABELS,
            "PAYMENT_METHODS": methods.PAYMENT_METHODS}


def _today():
    return rules.complaint_day(utcnow())


# ---------------------------------------------------------------- the queue

@bp.route("")
def index():
    """What waits for billing, the oldest first."""
    verifier = aliased(User)
    claims = db.session.execute(
        select(CashbackClaim, Ticket.number, Customer.name, Product.name, OwnedItem.amount_paid, verifier.name)
        .join(Ticket, Ticket.id == CashbackClaim.ticket_id).join(Customer, Customer.id == CashbackClaim.customer_id)
        .outerjoin(OwnedItem, OwnedItem.id == CashbackClaim.owned_item_id)
        .outerjoin(Product, Product.id == OwnedItem.product_id)
        .outerjoin(verifier, verifier.id == CashbackClaim.verified_by_id)
        .where(CashbackClaim.status.in_(("verified", "approved")))
        .order_by(CashbackClaim.updated_at, CashbackClaim.id).limit(LIST_LIMIT)).all()
    me = current_user.id
    claim_rows = []
    for claim, number, customer, product, item_paid, verified_by in claims:
        row = {"claim": claim, "number": number, "customer": customer, "product": product, "item_paid": item_paid,
               "verified_by": verified_by, "mine": claim.verified_by_id == me}
        if claim.status == "verified" and not row["mine"]:
            row["approve_form"] = ClaimApproveForm(formdata=None, back="billing")
            row["reject_form"] = ClaimRejectForm(formdata=None, back="billing")
        elif claim.status == "approved":
            row["pay_form"] = ClaimPayForm(formdata=None, back="billing", paid_on=_today())
        claim_rows.append(row)
    drafter = aliased(User)
    quotes = db.session.execute(
        select(RepairQuote, Ticket.number, Ticket.subject, Customer.name, drafter.name)
        .join(Ticket, Ticket.id == RepairQuote.ticket_id).join(Customer, Customer.id == RepairQuote.customer_id)
        .outerjoin(drafter, drafter.id == RepairQuote.drafted_by_id)
        .where(RepairQuote.status == "pending_billing")
        .order_by(RepairQuote.submitted_at, RepairQuote.id).limit(LIST_LIMIT)).all()
    payments = db.session.execute(
        select(Payment, Invoice.number, Invoice.bill_to_name).join(Invoice, Invoice.id == Payment.invoice_id)
        .where(Payment.status == "pending").order_by(Payment.recorded_at, Payment.id).limit(LIST_LIMIT)).all()
    invoices = services.open_invoices(limit=LIST_LIMIT)
    overdue = db.session.execute(select(Invoice).where(Invoice.status.in_(("unpaid", "partially_paid")),
                                                       Invoice.due_on < _today())
                                 .order_by(Invoice.due_on, Invoice.id).limit(LIST_LIMIT)).scalars().all()
    return render_template("billing/index.html", claims=claim_rows, quotes=quotes, payments=payments,
                           invoices=invoices, overdue=overdue, today=_today(),
                           confirm_form=ConfirmPaymentForm(formdata=None))


# ---------------------------------------------------------------- invoices

@bp.route("/invoices")
def invoices():
    status = request.args.get("status") or ""
    q = select(Invoice)
    if status == "overdue":
        q = q.where(Invoice.status.in_(("unpaid", "partially_paid")), Invoice.due_on < _today())
    elif status == "open":
        q = q.where(Invoice.status.in_(("unpaid", "partially_paid")))
    elif status in INVOICE_STATUSES:
        q = q.where(Invoice.status == status)
    else:
        status = ""
    rows = db.session.execute(q.order_by(Invoice.id.desc()).limit(LIST_LIMIT)).scalars().all()
    return render_template("billing/invoices.html", invoices=rows, status=status, today=_today(),
                           statuses=("open", "overdue") + INVOICE_STATUSES, limit=LIST_LIMIT)


def _invoice_or_404(invoice_id):
    return services.get_invoice(invoice_id)  # NotFound: the 404 page


def _render_invoice(invoice, status_code=200):
    invoice = db.session.execute(select(Invoice).options(selectinload(Invoice.lines), selectinload(Invoice.payments))
                                 .where(Invoice.id == invoice.id)).scalar_one()
    ids = {p.recorded_by_id for p in invoice.payments} | {p.confirmed_by_id for p in invoice.payments}
    ids.discard(None)
    names = dict(db.session.execute(select(User.id, User.name).where(User.id.in_(ids))).all()) if ids else {}
    ticket = db.session.get(Ticket, invoice.ticket_id) if invoice.ticket_id else None
    # billing sees a ticket while it waits for billing (or in their queues): else the number, no link
    ticket_link = ticket is not None and can_see(current_user._get_current_object(), ticket)
    payment_form = None
    if invoice.status not in ("paid", "void"):
        posted = bound("billing.record_payment", invoice_id=invoice.id)
        if posted is None:
            payment_form = PaymentForm(formdata=None, paid_on=_today(), amount=str(invoice.total - invoice.amount_paid))
        else:
            payment_form = PaymentForm(formdata=posted)
        payment_form.method.choices = [(code, str(label)) for code, label in methods.PAYMENT_METHODS.items()]
        if posted is not None:
            payment_form.validate()
    pending = [p for p in invoice.payments if p.status == "pending"]
    reject_forms = {}
    for p in pending:
        reject_forms[p.id] = form_for(RejectPaymentForm, "billing.reject_payment", payment_id=p.id)
    void_form = None
    if invoice.status != "void" and not invoice.amount_paid:
        void_form = form_for(VoidForm, "billing.void_invoice", invoice_id=invoice.id)
    return render_template("billing/invoice.html", invoice=invoice, ticket=ticket, ticket_link=ticket_link,
                           names=names,
                           payment_form=payment_form, confirm_form=ConfirmPaymentForm(formdata=None),
                           reject_forms=reject_forms, void_form=void_form, today=_today(),
                           overdue=invoice.status in ("unpaid", "partially_paid") and invoice.due_on < _today(),
                           ), status_code


@bp.route("/invoices/<int:invoice_id>")
def invoice(invoice_id):
    return _render_invoice(_invoice_or_404(invoice_id))


def _invoice_action(invoice, form, change, success):
    try:
        if not form.validate_on_submit():
            raise form_error(form)
        change()
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return _render_invoice(db.session.get(Invoice, invoice.id), status_code=exc.status_code)
    db.session.commit()
    flash(success, "success")
    return redirect(url_for("billing.invoice", invoice_id=invoice.id))


@bp.route("/invoices/<int:invoice_id>/payments", methods=["POST"])
def record_payment(invoice_id):
    """Record a payment (amount, method, reference, date); confirmed at once when ticked."""
    inv = _invoice_or_404(invoice_id)
    form = PaymentForm()
    form.method.choices = [(code, str(label)) for code, label in methods.PAYMENT_METHODS.items()]

    def change():
        services.record_payment(inv.id, current_user.id, amount=parse_amount(form.amount.data, "amount"),
                                method=form.method.data, paid_on=form.paid_on.data, reference=form.reference.data,
                                note=form.note.data, confirm=bool(form.confirm.data))

    return _invoice_action(inv, form, change, _("Payment confirmed.") if form.confirm.data
                           else _("Payment recorded: confirm it when the money has arrived."))


def _payment_or_404(payment_id):
    payment = db.session.get(Payment, payment_id)
    if payment is None:
        from ..errors import NotFound

        raise NotFound(_("Payment not found."))
    return payment


@bp.route("/payments/<int:payment_id>/confirm", methods=["POST"])
def confirm_payment(payment_id):
    payment = _payment_or_404(payment_id)
    return _invoice_action(payment.invoice, ConfirmPaymentForm(),
                           lambda: services.confirm_payment(payment.id, current_user.id), _("Payment confirmed."))


@bp.route("/payments/<int:payment_id>/reject", methods=["POST"])
def reject_payment(payment_id):
    payment = _payment_or_404(payment_id)
    form = RejectPaymentForm()
    return _invoice_action(payment.invoice, form,
                           lambda: services.reject_payment(payment.id, current_user.id, form.reason.data),
                           _("Payment rejected."))


@bp.route("/invoices/<int:invoice_id>/void", methods=["POST"])
def void_invoice(invoice_id):
    inv = _invoice_or_404(invoice_id)
    form = VoidForm()
    return _invoice_action(inv, form, lambda: services.void_invoice(inv.id, current_user.id, form.reason.data),
                           _("Invoice voided."))


@bp.route("/invoices/<int:invoice_id>/pdf")
def invoice_pdf(invoice_id):
    """The invoice as a PDF in its language (helpdesk/billing/pdf.py)."""
    from flask import current_app

    from .pdf import pdf_response

    return pdf_response(_invoice_or_404(invoice_id), current_app.jinja_env.globals["company"]())


from . import statement_views  # noqa: E402,F401  (bank statements and proofs of transfer, on this blueprint)
