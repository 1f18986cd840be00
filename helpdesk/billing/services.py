"""Invoices and payments.

- `create_invoice(...)` takes the year's next number in the invoice's own transaction
  (`next_sequence`): gapless per year, and on PostgreSQL concurrent invoices wait on the
  sequence row's lock, so two never share a number. B2B invoices carry the customer's NPWP.
- `record_payment(...)` by billing: a pending payment, confirmed at once when asked.
  `confirm_payment` makes it count: the invoice's paid amount and status are recomputed, the
  customer gets a payment confirmation mail, and when the invoice becomes paid its source is told
  (`PAID_HOOKS[source_type]`: a paid repair goes to work).
- `void_invoice` (billing, with a reason) for an invoice without confirmed payments.

Every change is audited (object_type "invoice", on the invoice's ticket when it has one).
"""
from datetime import timedelta

from flask import current_app
from sqlalchemy import func, select, update
from werkzeug.utils import import_string

from ..auth.i18n import _
from ..auth.models import User
from ..customers.models import Customer, Organisation
from ..dbutil import insert_fn
from ..errors import DomainError, Forbidden, NotFound
from ..extensions import db
from ..timeutil import utcnow
from ..warranty import rules
from . import methods, money
from .models import Invoice, InvoiceLine, InvoiceSequence, Payment

DEFAULT_DUE_DAYS = 14
# source_type -> "module.function(invoice, actor_id, now)", called when an invoice becomes paid
PAID_HOOKS = {"repair": "helpdesk.repairs.services.on_invoice_paid",
              "order": "helpdesk.sales.services.on_invoice_paid",
              "renewal": "helpdesk.sales.renewals.on_invoice_paid"}


def _audit(invoice, actor_id, action, old=None, new=None, note=None, actor_customer_id=None):
    from ..tickets.services import audit

    return audit(invoice.ticket_id, actor_id, action, old, new, note=note, object_type="invoice",
                 object_id=invoice.id, actor_customer_id=actor_customer_id)


def _billing_user(actor_id, message):
    user = db.session.get(User, actor_id) if actor_id else None
    if user is None or not user.active:
        raise Forbidden(message)
    if not user.has_role("billing"):
        raise Forbidden(message)
    return user


# ---------------------------------------------------------------- numbers

def next_sequence(year):
    """The year's next invoice number, taken in the caller's transaction (see the module doc)."""
    bump = (update(InvoiceSequence).where(InvoiceSequence.year == year)
            .values(last_number=InvoiceSequence.last_number + 1).returning(InvoiceSequence.last_number)
            .execution_options(synchronize_session=False))
    value = db.session.execute(bump).scalar_one_or_none()
    if value is None:
        insert = insert_fn(db.session)
        db.session.execute(insert(InvoiceSequence).values(year=year, last_number=0)
                           .on_conflict_do_nothing(index_elements=["year"]))
        value = db.session.execute(bump).scalar_one()
    return value


# ---------------------------------------------------------------- invoices

def bill_to(customer):
    """(name, company, npwp) for an invoice: B2B invoices carry the organisation and its NPWP."""
    if customer.kind == "b2b":
        org = db.session.get(Organisation, customer.organisation_id) if customer.organisation_id else None
        npwp = (org.npwp if org is not None and org.npwp else None) or customer.npwp
        return customer.name, org.name if org is not None else None, npwp
    return customer.name, None, None


def create_invoice(*, customer_id, lines, actor_id=None, ticket_id=None, source_type=None, source_id=None,
                   due_days=None, discount=0, tax_rate_bp=0, now=None):
    """An unpaid invoice. lines: [{"description", "quantity", "unit_price", "discount"?, "kind"?,
    "product_id"?, "covered_reason"?}] (a line with a covered_reason is 0). `discount`: taken off the
    lines' sum (a voucher); `tax_rate_bp`: tax on what is left, rounded once. Returns the Invoice (flushed)."""
    from ..sales import pricing

    now = now or utcnow()
    customer = db.session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(_("Customer not found."))
    if not lines:
        raise DomainError(_("An invoice needs at least one line."))
    issued = rules.complaint_day(now)  # today in Asia/Jakarta
    if due_days is None:
        due_days = current_app.config.get("INVOICE_DUE_DAYS", DEFAULT_DUE_DAYS)
    name, company, npwp = bill_to(customer)
    built = []
    for position, line in enumerate(lines, start=1):
        try:
            quantity = int(line.get("quantity", 1))
            covered = bool(line.get("covered_reason"))
            line_discount = 0 if covered else int(line.get("discount") or 0)
            amount = money.line_amount(quantity, line["unit_price"], covered)
            if not 0 <= line_discount <= amount:
                raise money.MoneyError("the discount is larger than the line")
        except (money.MoneyError, TypeError, ValueError) as exc:
            raise DomainError(_("Line %(n)s: %(error)s", n=position, error=str(exc))) from None
        built.append(InvoiceLine(position=position, kind=line.get("kind") or "service",
                                 description=str(line["description"])[:300], product_id=line.get("product_id"),
                                 quantity=quantity, unit_price=line["unit_price"], discount=line_discount,
                                 amount=amount - line_discount, covered_reason=line.get("covered_reason")))
    after_lines = sum(ln.amount for ln in built)
    try:
        money.check_amount(discount)
        if discount > after_lines:
            raise money.MoneyError("the discount is larger than the invoice")
        tax = pricing.tax_of(after_lines - discount, tax_rate_bp)
    except (money.MoneyError, pricing.PricingError) as exc:
        raise DomainError(str(exc)) from None
    # the number last, once the lines are known to be good (it is given back only by a rollback)
    seq = next_sequence(issued.year)
    invoice = Invoice(number=money.format_number(issued.year, seq), year=issued.year, sequence=seq,
                      customer_id=customer.id, ticket_id=ticket_id, source_type=source_type, source_id=source_id,
                      bill_to_name=name, bill_to_company=company, npwp=npwp, locale=customer.language,
                      issued_on=issued, due_on=issued + timedelta(days=int(due_days)), created_by_id=actor_id,
                      created_at=now, status="unpaid", amount_paid=0, lines=built,
                      subtotal=sum(ln.amount + ln.discount for ln in built),
                      discount=sum(ln.discount for ln in built) + discount, tax_rate_bp=tax_rate_bp, tax=tax)
    invoice.total = after_lines - discount + tax
    invoice.status = money.invoice_status(invoice.total, 0)
    if invoice.status == "paid":
        invoice.paid_at = now
    db.session.add(invoice)
    db.session.flush()
    set_transfer_amount(invoice)
    _audit(invoice, actor_id, "invoice_created", None, invoice.number, note=money.format_rupiah(invoice.total))
    return invoice


def set_transfer_amount(invoice, rng=None):
    """The invoice's bank transfer amount: what is left + its 3-digit code (helpdesk.billing.transfer),
    unique among open invoices (the partial unique index uq_invoices_open_transfer_amount). The same
    code is kept when it is still free; on a collision (another writer took the amount) another code is
    tried under a savepoint. Cleared when the invoice is paid or void. Flushes."""
    import random

    from sqlalchemy.exc import IntegrityError
    from sqlalchemy.orm.attributes import set_committed_value

    from . import transfer

    db.session.flush()
    left = invoice.total - invoice.amount_paid
    if invoice.status not in ("unpaid", "partially_paid") or left <= 0:
        if invoice.transfer_amount is not None:
            db.session.execute(update(Invoice).where(Invoice.id == invoice.id).values(transfer_amount=None)
                               .execution_options(synchronize_session=False))
            set_committed_value(invoice, "transfer_amount", None)
        return None
    if invoice.transfer_amount == left + (invoice.transfer_code or 0) and invoice.transfer_code:
        return invoice.transfer_amount
    rng = rng or random.SystemRandom()
    prefer = invoice.transfer_code
    for _attempt in range(20):
        taken = db.session.execute(select(Invoice.transfer_amount).where(
            Invoice.status.in_(("unpaid", "partially_paid")), Invoice.id != invoice.id,
            Invoice.transfer_amount.between(left + transfer.CODE_MIN, left + transfer.CODE_MAX))).scalars().all()
        code = transfer.pick_code(left, taken, rng, prefer=prefer)
        if code is None:
            break
        try:
            with db.session.begin_nested():
                db.session.execute(update(Invoice).where(Invoice.id == invoice.id)
                                   .values(transfer_code=code, transfer_amount=left + code)
                                   .execution_options(synchronize_session=False))
        except IntegrityError:
            prefer = None  # taken meanwhile: another code
            continue
        set_committed_value(invoice, "transfer_code", code)
        set_committed_value(invoice, "transfer_amount", left + code)
        return left + code
    # every code taken (or the writers kept colliding): no code, the invoice number still matches
    db.session.execute(update(Invoice).where(Invoice.id == invoice.id).values(transfer_amount=None)
                       .execution_options(synchronize_session=False))
    set_committed_value(invoice, "transfer_amount", None)
    return None


def get_invoice(invoice_id):
    invoice = db.session.get(Invoice, invoice_id)
    if invoice is None:
        raise NotFound(_("Invoice not found."))
    return invoice


def by_number(number):
    return db.session.execute(select(Invoice).where(Invoice.number == number)).scalar_one_or_none()


def _recompute(invoice, actor_id, now):
    """The paid amount from the confirmed payments, then the status; tells the source once paid."""
    paid = db.session.execute(select(func.coalesce(func.sum(Payment.amount), 0)).where(
        Payment.invoice_id == invoice.id, Payment.status == "confirmed")).scalar_one()
    old = invoice.status
    invoice.amount_paid = int(paid)
    invoice.status = money.invoice_status(invoice.total, invoice.amount_paid, invoice.voided_at is not None)
    if invoice.status != old:
        _audit(invoice, actor_id, "invoice_status", old, invoice.status)
    set_transfer_amount(invoice)
    if invoice.status == "paid" and old != "paid":
        invoice.paid_at = now
        hook = PAID_HOOKS.get(invoice.source_type)
        if hook is not None:
            import_string(hook)(invoice, actor_id, now)


def record_payment(invoice_id, actor_id, *, amount, method, paid_on, reference=None, note=None, confirm=False,
                   now=None):
    """Billing records a payment (pending); with confirm=True it is confirmed at once."""
    now = now or utcnow()
    _billing_user(actor_id, _("Only billing can record payments."))
    invoice = get_invoice(invoice_id)
    if invoice.status == "void":
        raise DomainError(_("This invoice is void."))
    if method not in methods.PAYMENT_METHODS:
        raise DomainError(_("Unknown payment method."), field="method")
    try:
        money.check_amount(amount, allow_zero=False)
    except money.MoneyError:
        raise DomainError(_("Enter the amount in whole rupiah, more than zero."), field="amount") from None
    if paid_on is None:
        raise DomainError(_("Enter the payment date."), field="paid_on")
    if paid_on > rules.complaint_day(now):
        raise DomainError(_("The payment date cannot be in the future."), field="paid_on")
    payment = Payment(invoice_id=invoice.id, amount=amount, method=method, reference=(reference or "").strip()[:120]
                      or None, paid_on=paid_on, note=(note or "").strip()[:500] or None, status="pending",
                      recorded_by_id=actor_id, recorded_at=now)
    db.session.add(payment)
    db.session.flush()
    _audit(invoice, actor_id, "payment_recorded", None, money.format_rupiah(amount),
           note=f"{method} {payment.reference or ''}".strip())
    if confirm:
        confirm_payment(payment.id, actor_id, now=now)
    return payment


def confirm_payment(payment_id, actor_id, now=None):
    """Billing confirms a pending payment: it counts, and the customer is told by mail."""
    now = now or utcnow()
    _billing_user(actor_id, _("Only billing can confirm payments."))
    payment = db.session.get(Payment, payment_id)
    if payment is None:
        raise NotFound(_("Payment not found."))
    if payment.status != "pending":
        raise DomainError(_("This payment was already handled."))
    invoice = payment.invoice
    if invoice.status == "void":
        raise DomainError(_("This invoice is void."))
    payment.status, payment.confirmed_by_id, payment.confirmed_at = "confirmed", actor_id, now
    db.session.flush()
    _audit(invoice, actor_id, "payment_confirmed", None, money.format_rupiah(payment.amount),
           note=payment.reference)
    _recompute(invoice, actor_id, now)
    _mail_customer("payment_confirmed", invoice, {"payment_id": payment.id}, now)
    return payment


def reject_payment(payment_id, actor_id, reason, now=None):
    """Billing rejects a recorded payment that did not arrive (it never counted)."""
    _billing_user(actor_id, _("Only billing can confirm payments."))
    payment = db.session.get(Payment, payment_id)
    if payment is None:
        raise NotFound(_("Payment not found."))
    if payment.status != "pending":
        raise DomainError(_("This payment was already handled."))
    reason = (reason or "").strip()
    if not reason:
        raise DomainError(_("Give the reason."), field="reason")
    payment.status, payment.note = "rejected", reason[:500]
    payment.confirmed_by_id, payment.confirmed_at = actor_id, now or utcnow()
    _audit(payment.invoice, actor_id, "payment_rejected", None, money.format_rupiah(payment.amount), note=reason)
    return payment


def void_invoice(invoice_id, actor_id, reason, now=None):
    """Billing voids an invoice that has no confirmed payment (its number stays used)."""
    now = now or utcnow()
    _billing_user(actor_id, _("Only billing can void invoices."))
    invoice = get_invoice(invoice_id)
    reason = (reason or "").strip()
    if not reason:
        raise DomainError(_("Give the reason."), field="reason")
    return void(invoice, actor_id, reason, now)


def void(invoice, actor_id, reason, now):
    """Void an invoice without confirmed payments (billing's action, or a cancelled order's)."""
    if invoice.status == "void":
        raise DomainError(_("This invoice is void."))
    if invoice.amount_paid:
        raise DomainError(_("An invoice with confirmed payments cannot be voided."))
    old = invoice.status
    invoice.status, invoice.voided_at, invoice.void_reason = "void", now, reason[:500]
    set_transfer_amount(invoice)
    _audit(invoice, actor_id, "invoice_status", old, "void", note=reason)
    return invoice


def mail_invoice(invoice, now=None):
    """The invoice to its customer by mail (kind "invoice": the lines, total, due date, how to pay)."""
    return _mail_customer("invoice", invoice, {}, now or utcnow())


def _mail_customer(kind, invoice, context, now):
    """A mail about the invoice to its customer, in their language (on the ticket's thread when it has one)."""
    from ..mail import outbound
    from ..tickets.models import Ticket

    ticket = db.session.get(Ticket, invoice.ticket_id) if invoice.ticket_id else None
    return outbound.queue_customer_mail(kind, customer_id=invoice.customer_id, ticket=ticket, invoice=invoice,
                                        context=dict(context, invoice_id=invoice.id), reply=False, now=now)


def invoices_of(customer_id):
    return db.session.execute(select(Invoice).where(Invoice.customer_id == customer_id)
                              .order_by(Invoice.id.desc())).scalars().all()


def open_invoices(limit=200):
    """Unpaid and partly paid invoices, the oldest due first (the billing queue)."""
    return db.session.execute(select(Invoice).where(Invoice.status.in_(("unpaid", "partially_paid")))
                              .order_by(Invoice.due_on, Invoice.id).limit(limit)).scalars().all()


def pending_payments(limit=200):
    return db.session.execute(select(Payment).where(Payment.status == "pending")
                              .order_by(Payment.recorded_at, Payment.id).limit(limit)).scalars().all()
