"""Paid repairs (out of warranty and out of contract), from quote to work.

1. `draft_quote`: technical support starts a quote on the ticket, pre-filled from its eligibility
   decision: the service fee (REPAIR_SERVICE_FEE) is chargeable for `paid` service and covered
   (0, with the decision's explanation as the reason) when service is free. `save_lines` edits
   the lines while the quote is a draft (or was rejected by billing).
2. `submit`: the quote goes to billing and the ticket waits in pending_billing. Billing may
   `edit_price` (each change audited, old → new, with the reason), then `approve`, or `reject`
   with a reason (the ticket goes back to open and the quote can be edited again). Only billing
   decides, and not on a quote they drafted.
3. Approval sends the customer the quote with a signed link (GET shows, POST decides; the link
   names the quote's version, so a changed quote needs a new link), also in the portal; the ticket
   waits in pending_customer. `customer_decide` approves or declines.
4. Approval creates the invoice (helpdesk.billing). Work starts when it is paid (billing's payment
   confirmation calls `on_invoice_paid`), or at once with REPAIR_WORK_BEFORE_PAYMENT.
5. `complete`: technical support marks the work done.

Every step is audited (object_type "repair", on the ticket) and mails the people concerned.
"""
from flask import current_app
from sqlalchemy import select

from ..auth.i18n import _
from ..auth.models import User
from ..billing import money
from ..billing import services as billing
from ..customers.models import Customer
from ..errors import Conflict, DomainError, Forbidden, NotFound
from ..extensions import db
from ..timeutil import utcnow
from .models import EDITABLE_QUOTE_STATUSES, LINE_KINDS, LIVE_QUOTE_STATUSES, RepairQuote, RepairQuoteLine

LINK_SALT = "helpdesk.repair.quote"
MAX_LINES = 50
FREE_CHARGES = ("free_warranty", "free_contract", "free_bundle")


def _audit(quote, actor_id, action, old=None, new=None, note=None, actor_customer_id=None):
    from ..tickets.services import audit

    return audit(quote.ticket_id, actor_id, action, old, new, note=note, object_type="repair", object_id=quote.id,
                 actor_customer_id=actor_customer_id)


def _user(actor_id):
    user = db.session.get(User, actor_id) if actor_id else None
    if user is None or not user.active:
        raise Forbidden(_("You cannot do this."))
    return user


def _tech(actor_id):
    user = _user(actor_id)
    if not user.has_role("technical_support"):
        raise Forbidden(_("Only technical support can draft and change repair quotes."))
    return user


def _billing(actor_id):
    user = _user(actor_id)
    if not user.has_role("billing"):
        raise Forbidden(_("Only billing can decide on a repair quote."))
    return user


def _ticket(quote):
    from ..tickets.models import Ticket

    return db.session.get(Ticket, quote.ticket_id)


def _move_ticket(quote, expected, new, actor_id, now, actor_customer_id=None, note=None):
    """Move the quote's ticket to `new` when it is in one of `expected` (an agent may have moved it
    by hand meanwhile: then it stays where it is)."""
    from ..tickets.services import _set_status

    ticket = _ticket(quote)
    if ticket is not None and ticket.status in expected and ticket.status != new:
        _set_status(ticket, new, actor_id, now, actor_customer_id=actor_customer_id, note=note)
    return ticket


def get_quote(quote_id):
    quote = db.session.get(RepairQuote, quote_id)
    if quote is None:
        raise NotFound(_("Repair quote not found."))
    return quote


def live_quote(ticket_id):
    return db.session.execute(select(RepairQuote).where(RepairQuote.ticket_id == ticket_id,
                                                        RepairQuote.status.in_(LIVE_QUOTE_STATUSES))
                              ).scalar_one_or_none()


def quotes_of(ticket_id):
    return db.session.execute(select(RepairQuote).where(RepairQuote.ticket_id == ticket_id)
                              .order_by(RepairQuote.id.desc())).scalars().all()


def _expect(quote, *statuses):
    if quote.status not in statuses:
        raise Conflict(_("This repair quote is no longer waiting for that step."))


def _recompute(quote):
    quote.total = money.total(line.amount for line in quote.lines)


# ---------------------------------------------------------------- 1. the quote

SERVICE_FEE_TEXT = {"id": "Biaya servis", "en": "Service fee"}


def default_lines(ticket):
    """The lines a new quote starts from, given the ticket's eligibility decision, in the customer's
    language (Indonesian when unknown): the service fee, chargeable, or covered with the decision's
    explanation as the reason when service is free."""
    fee = int(current_app.config.get("REPAIR_SERVICE_FEE", 150000))
    customer = db.session.get(Customer, ticket.customer_id)
    lang = customer.language if customer is not None and customer.language in SERVICE_FEE_TEXT else "id"
    explanation = ((ticket.eligibility or {}).get("explanation") or {})
    if ticket.charge in FREE_CHARGES:
        reason = explanation.get(lang) or explanation.get("en") or ticket.charge
        return [{"kind": "service", "description": SERVICE_FEE_TEXT[lang], "quantity": 1, "unit_price": 0,
                 "covered": True, "covered_reason": reason[:300]}]
    return [{"kind": "service", "description": SERVICE_FEE_TEXT[lang], "quantity": 1, "unit_price": fee,
             "covered": False, "covered_reason": None}]


def draft_quote(ticket_id, actor_id, now=None):
    """Technical support starts the ticket's repair quote (one live quote per ticket)."""
    from ..tickets.services import get_ticket_for

    now = now or utcnow()
    user = _tech(actor_id)
    _user_, ticket = get_ticket_for(user.id, ticket_id)
    if ticket.status in ("resolved", "closed"):
        raise DomainError(_("Reopen the ticket before starting a repair quote."))
    if live_quote(ticket.id) is not None:
        raise Conflict(_("This ticket already has a repair quote."))
    quote = RepairQuote(ticket_id=ticket.id, customer_id=ticket.customer_id, owned_item_id=ticket.owned_item_id,
                        status="draft", version=1, charge=ticket.charge, drafted_by_id=user.id, drafted_at=now,
                        updated_at=now)
    db.session.add(quote)
    _set_lines(quote, default_lines(ticket))
    db.session.flush()
    _audit(quote, user.id, "repair", None, "draft", note=money.format_rupiah(quote.total))
    return quote


def _clean_line(raw, position):
    try:
        quantity = raw.get("quantity")
        # left empty means one; 0 stays 0 (refused below), and a typed "abc" is the user's mistake, not a crash
        quantity = 1 if quantity is None or quantity == "" else int(quantity)
    except (TypeError, ValueError):
        raise DomainError(_("Line %(n)s: %(error)s", n=position, error="quantity must be a whole number from 1 "
                            "to 10000"), field="lines") from None
    try:
        unit_price = raw.get("unit_price") or 0
        if isinstance(unit_price, str):
            unit_price = money.parse_rupiah(unit_price) or 0
        covered = bool(raw.get("covered"))
        reason = (raw.get("covered_reason") or "").strip()[:300] or None
        if covered:
            unit_price = 0
            if not reason:
                raise DomainError(_("Line %(n)s: say why it is covered.", n=position), field="lines")
        amount = money.line_amount(quantity, unit_price, covered)
    except money.MoneyError as exc:
        raise DomainError(_("Line %(n)s: %(error)s", n=position, error=str(exc)), field="lines") from None
    description = (raw.get("description") or "").strip()[:300]
    if not description:
        raise DomainError(_("Line %(n)s: describe it.", n=position), field="lines")
    kind = raw.get("kind") if raw.get("kind") in LINE_KINDS else "service"
    return RepairQuoteLine(position=position, kind=kind, description=description, product_id=raw.get("product_id"),
                           quantity=quantity, unit_price=unit_price, covered=covered,
                           covered_reason=reason if covered else None, amount=amount)


def _set_lines(quote, lines):
    if not lines:
        raise DomainError(_("A quote needs at least one line."), field="lines")
    if len(lines) > MAX_LINES:
        raise DomainError(_("A quote has at most %(n)s lines.", n=MAX_LINES), field="lines")
    new = [_clean_line(raw, n) for n, raw in enumerate(lines, start=1)]
    quote.lines.clear()
    db.session.flush()
    quote.lines.extend(new)
    _recompute(quote)


def save_lines(quote_id, actor_id, lines, now=None):
    """Technical support replaces the lines of a draft (or a quote billing rejected)."""
    now = now or utcnow()
    user = _tech(actor_id)
    quote = get_quote(quote_id)
    _expect(quote, *EDITABLE_QUOTE_STATUSES)
    old_total = quote.total
    _set_lines(quote, lines)
    quote.updated_at = now
    db.session.flush()
    _audit(quote, user.id, "repair_lines", money.format_rupiah(old_total), money.format_rupiah(quote.total))
    return quote


def cancel(quote_id, actor_id, reason, now=None):
    """Technical support drops a quote that has not gone to the customer."""
    now = now or utcnow()
    user = _tech(actor_id)
    quote = get_quote(quote_id)
    _expect(quote, *EDITABLE_QUOTE_STATUSES)
    reason = (reason or "").strip()
    if not reason:
        raise DomainError(_("Give the reason."), field="reason")
    old = quote.status
    quote.status, quote.updated_at = "cancelled", now
    _audit(quote, user.id, "repair", old, "cancelled", note=reason[:500])
    return quote


# ---------------------------------------------------------------- 2. billing

def submit(quote_id, actor_id, now=None):
    """The quote goes to billing; the ticket waits in pending_billing."""
    now = now or utcnow()
    user = _tech(actor_id)
    quote = get_quote(quote_id)
    _expect(quote, *EDITABLE_QUOTE_STATUSES)
    if quote.total <= 0:
        raise DomainError(_("Nothing on this quote is chargeable: a covered repair needs no quote."))
    ticket = _ticket(quote)
    if ticket.status in ("resolved", "closed"):
        raise DomainError(_("Reopen the ticket before starting a repair quote."))
    old = quote.status
    quote.status, quote.submitted_at, quote.updated_at = "pending_billing", now, now
    quote.billing_reason = None
    quote.version += 1
    _audit(quote, user.id, "repair", old, "pending_billing", note=money.format_rupiah(quote.total))
    _move_ticket(quote, ("new", "open", "pending_customer"), "pending_billing", user.id, now)
    _tell_users(quote, "repair_for_billing", _role_users("billing"), now)
    return quote


def edit_price(quote_id, actor_id, line_id, unit_price, reason, now=None):
    """Billing changes a line's unit price before deciding (old → new and the reason, audited)."""
    now = now or utcnow()
    user = _billing(actor_id)
    quote = get_quote(quote_id)
    _expect(quote, "pending_billing")
    line = next((ln for ln in quote.lines if ln.id == line_id), None)
    if line is None:
        raise NotFound(_("Quote line not found."))
    if line.covered:
        raise DomainError(_("A covered line has no price."), field="unit_price")
    reason = (reason or "").strip()
    if not reason:
        raise DomainError(_("Give the reason for the new price."), field="reason")
    try:
        amount = money.line_amount(line.quantity, unit_price)
    except money.MoneyError:
        raise DomainError(_("Enter the amount in whole rupiah."), field="unit_price") from None
    if unit_price == line.unit_price:
        return quote
    old = line.unit_price
    line.unit_price, line.amount = unit_price, amount
    _recompute(quote)
    quote.version += 1
    quote.updated_at = now
    _audit(quote, user.id, "repair_price", money.format_rupiah(old), money.format_rupiah(unit_price),
           note=f"{line.description}: {reason[:400]}")
    return quote


def approve(quote_id, actor_id, now=None):
    """Billing approves: the customer gets the quote to approve; the ticket waits in pending_customer."""
    now = now or utcnow()
    user = _billing(actor_id)
    quote = get_quote(quote_id)
    _expect(quote, "pending_billing")
    if quote.drafted_by_id == user.id:
        raise Forbidden(_("You drafted this quote, so someone else in billing must approve it."))
    if quote.total <= 0:
        raise DomainError(_("Nothing on this quote is chargeable: a covered repair needs no quote."))
    quote.status, quote.billing_by_id, quote.billing_at, quote.updated_at = "pending_customer", user.id, now, now
    _audit(quote, user.id, "repair", "pending_billing", "pending_customer", note=money.format_rupiah(quote.total))
    _move_ticket(quote, ("pending_billing",), "pending_customer", user.id, now)
    _mail_customer(quote, "repair_quote", now)
    return quote


def reject(quote_id, actor_id, reason, now=None):
    """Billing rejects with a reason: the ticket goes back to open and the drafter is told."""
    now = now or utcnow()
    user = _billing(actor_id)
    quote = get_quote(quote_id)
    _expect(quote, "pending_billing")
    if quote.drafted_by_id == user.id:
        raise Forbidden(_("You drafted this quote, so someone else in billing must decide on it."))
    reason = (reason or "").strip()
    if not reason:
        raise DomainError(_("Give the reason."), field="reason")
    quote.status, quote.billing_by_id, quote.billing_at = "rejected", user.id, now
    quote.billing_reason, quote.updated_at = reason[:2000], now
    _audit(quote, user.id, "repair", "pending_billing", "rejected", note=reason[:500])
    _move_ticket(quote, ("pending_billing",), "open", user.id, now)
    _tell_users(quote, "repair_rejected", _drafter(quote), now)
    return quote


def for_billing(limit=200):
    return db.session.execute(select(RepairQuote).where(RepairQuote.status == "pending_billing")
                              .order_by(RepairQuote.submitted_at, RepairQuote.id).limit(limit)).scalars().all()


# ---------------------------------------------------------------- 3. the customer

def make_token(quote):
    from ..webform.tokens import _serializer

    return _serializer(LINK_SALT).dumps({"q": quote.id, "c": quote.customer_id, "v": quote.version})


def load_token(token, max_age=None):
    """(quote_id, customer_id, version) of a genuine, fresh link; else webform.tokens.InvalidToken."""
    from ..webform.tokens import InvalidToken, _load

    if max_age is None:
        max_age = current_app.config.get("REPAIR_LINK_MAX_AGE") or 30 * 24 * 3600
    data = _load(token, LINK_SALT, max_age)
    if not isinstance(data, dict) or not all(isinstance(data.get(k), int) and not isinstance(data.get(k), bool)
                                             for k in ("q", "c", "v")):
        raise InvalidToken()
    return data["q"], data["c"], data["v"]


def link_url(quote):
    return current_app.config["BASE_URL"].rstrip("/") + "/portal/quote/" + make_token(quote)


def quote_for_customer(quote_id, customer_id, version=None):
    """The customer's quote (as the link shows it). A link to an older version of the quote is refused."""
    quote = db.session.get(RepairQuote, quote_id)
    if quote is None or quote.customer_id != customer_id:
        raise NotFound(_("Repair quote not found."))
    if version is not None and version != quote.version:
        raise Conflict(_("This quote has changed since this link was sent. Use the newest email or your portal."))
    return quote


def customer_decide(quote_id, customer_id, decision, reason=None, version=None, now=None):
    """The customer approves (the invoice is created) or declines the quote."""
    now = now or utcnow()
    quote = quote_for_customer(quote_id, customer_id, version)
    if quote.status != "pending_customer":
        raise Conflict(_("This quote is no longer waiting for your answer."))
    if decision not in ("approve", "decline"):
        raise DomainError(_("Please approve or decline."), field="decision")
    quote.customer_decided_at, quote.updated_at = now, now
    if decision == "decline":
        quote.status, quote.decline_reason = "declined", (reason or "").strip()[:2000] or None
        _audit(quote, None, "repair", "pending_customer", "declined", note=quote.decline_reason,
               actor_customer_id=customer_id)
        _move_ticket(quote, ("pending_customer",), "open", None, now, actor_customer_id=customer_id)
        _tell_users(quote, "repair_declined", _drafter(quote), now)
        return quote
    invoice = billing.create_invoice(
        customer_id=quote.customer_id, ticket_id=quote.ticket_id, source_type="repair", source_id=quote.id,
        lines=[{"kind": ln.kind, "description": ln.description, "product_id": ln.product_id,
                "quantity": ln.quantity, "unit_price": ln.unit_price,
                "covered_reason": ln.covered_reason if ln.covered else None} for ln in quote.lines],
        now=now)
    quote.invoice_id = invoice.id
    work_now = bool(current_app.config.get("REPAIR_WORK_BEFORE_PAYMENT"))
    quote.status = "in_work" if work_now else "awaiting_payment"
    if work_now:
        quote.work_started_at = now
    _audit(quote, None, "repair", "pending_customer", quote.status, note=invoice.number,
           actor_customer_id=customer_id)
    if work_now:
        _move_ticket(quote, ("pending_customer",), "open", None, now, actor_customer_id=customer_id)
    _mail_customer(quote, "repair_invoice", now, invoice_id=invoice.id)
    _tell_users(quote, "repair_approved", _drafter(quote), now)
    return quote


# ---------------------------------------------------------------- 4. paid, 5. work

def on_invoice_paid(invoice, actor_id, now):
    """billing.PAID_HOOKS["repair"]: the paid repair goes to work; the ticket opens again."""
    quote = db.session.get(RepairQuote, invoice.source_id)
    if quote is None or quote.status != "awaiting_payment":
        return
    quote.status, quote.work_started_at, quote.updated_at = "in_work", now, now
    _audit(quote, actor_id, "repair", "awaiting_payment", "in_work", note=invoice.number)
    _move_ticket(quote, ("pending_customer",), "open", actor_id, now)
    _tell_users(quote, "repair_paid", _drafter(quote), now)



def complete(quote_id, actor_id, note=None, now=None):
    """Technical support marks the repair done."""
    now = now or utcnow()
    user = _tech(actor_id)
    quote = get_quote(quote_id)
    _expect(quote, "in_work")
    quote.status, quote.completed_at, quote.completed_by_id, quote.updated_at = "completed", now, user.id, now
    _audit(quote, user.id, "repair", "in_work", "completed", note=(note or "").strip()[:500] or None)
    return quote


# ---------------------------------------------------------------- mail

def _role_users(role):
    from ..mail import outbound

    return outbound.users_with_role(role)


def _drafter(quote):
    user = db.session.get(User, quote.drafted_by_id) if quote.drafted_by_id else None
    return [user] if user is not None and user.active else []


def _tell_users(quote, kind, users, now):
    from ..mail import outbound

    return outbound.notify_agents(kind, _ticket(quote), users, context={"quote_id": quote.id}, now=now)


def _mail_customer(quote, kind, now, **context):
    from ..mail import outbound

    ticket = _ticket(quote)
    if ticket is None:
        return None
    return outbound.queue_customer_mail(kind, customer_id=quote.customer_id, ticket=ticket,
                                        context=dict(context, quote_id=quote.id), now=now)
