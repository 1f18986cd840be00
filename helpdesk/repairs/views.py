"""Paid repairs in the agent UI: the ticket page's repair card and its actions.

Technical support drafts the quote, edits its lines, submits it to billing, cancels it, and marks
the work done (they must see the ticket: 404 otherwise). Billing edits a price, approves or
rejects (not on a quote they drafted): billing does not need to see the ticket (it waits in
pending_billing, which billing sees anyway, and the billing queue links to it).
Views are thin: helpdesk.repairs.services holds the rules.
"""
from datetime import timedelta

from flask import Blueprint, abort, current_app, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy import select
from sqlalchemy.orm import aliased, selectinload

from ..auth.models import User
from ..billing.models import Invoice
from ..claims.views import acting_user, bound, form_for, money_probe, parse_amount, run
from ..errors import DomainError, Forbidden
from ..extensions import db
from ..tickets import services as tickets
from ..tickets.models import Ticket
from ..timeutil import utcnow
from . import services
from .forms import (LINE_KIND_LABELS, ActionForm, CancelForm, CompleteForm, DraftForm, PriceForm, QuoteLinesForm,
                    RejectForm)
from .models import EDITABLE_QUOTE_STATUSES, RepairQuote

bp = Blueprint("repairs", __name__)

QUOTE_STATUS_LABELS = {
    "draft": _l("Draft"), "rejected": _l("Rejected by billing"), "pending_billing": _l("Waiting for billing"),
    "pending_customer": _l("Waiting for the customer"), "awaiting_payment": _l("Waiting for payment"),
    "in_work": _l("In work"), "completed": _l("Done"), "declined": _l("Declined by the customer"),
    "cancelled": _l("Cancelled")}
STEPS = (("quote", _l("Quote")), ("billing", _l("Billing approval")), ("customer", _l("Customer approval")),
         ("invoice", _l("Invoice")), ("payment", _l("Payment")), ("work", _l("Work")), ("done", _l("Done")))
# status -> (index of the current step, index of a failed step or None)
STEP_OF = {"draft": (0, None), "rejected": (0, 1), "pending_billing": (1, None), "pending_customer": (2, None),
           "awaiting_payment": (4, None), "in_work": (5, None), "completed": (7, None), "declined": (2, 2),
           "cancelled": (0, 0)}


@bp.before_request
@login_required
def _require_login():
    """Agents only."""


@bp.app_context_processor
def _labels():
    return {"QUOTE_STATUS_LABELS": QUOTE_STATUS_LABELS,
            "LINE_KIND_LABELS": LINE_KIND_LABELS}


def steps_of(quote, invoice=None):
    """The stepper: [{"key", "label", "state": done | current | todo | failed}]."""
    current, failed_at = STEP_OF.get(quote.status, (0, None))
    out = []
    for n, (key, label) in enumerate(STEPS):
        if failed_at is not None and n == failed_at:
            state = "failed"
        elif failed_at is not None and n > failed_at and quote.status != "rejected":
            state = "todo"
        elif n < current:
            state = "done"
        elif n == current:
            state = "current"
        else:
            state = "todo"
        out.append({"key": key, "label": label, "state": state})
    if quote.status == "in_work" and invoice is not None and invoice.status != "paid":
        out[4]["state"] = "todo"  # work before payment (REPAIR_WORK_BEFORE_PAYMENT)
    return out


def lines_form(quote, formdata=None, add_row=False):
    """The lines editor: the quote's lines and one blank row (what was typed, when refused)."""
    if formdata is not None:
        form = QuoteLinesForm(formdata=formdata)
    else:
        data = [{"kind": ln.kind, "description": ln.description, "quantity": str(ln.quantity),
                 "unit_price": str(ln.unit_price) if not ln.covered else "", "covered": ln.covered,
                 "covered_reason": ln.covered_reason or ""} for ln in quote.lines]
        form = QuoteLinesForm(formdata=None, data={"lines": data})
        add_row = True
    if add_row or not form.lines.entries:
        form.lines.append_entry({"kind": "part", "quantity": "1"})
    return form


@bp.app_template_global()
def repair_panel(ticket):
    """What the repair card shows: the ticket's quotes (one statement with the invoice and the
    people's names, plus one for the lines) and the forms this agent may use."""
    drafter, biller = aliased(User), aliased(User)
    rows = [] if not money_probe(ticket)[1] else db.session.execute(
        select(RepairQuote, Invoice, drafter.name, biller.name).options(selectinload(RepairQuote.lines))
        .outerjoin(Invoice, Invoice.id == RepairQuote.invoice_id)
        .outerjoin(drafter, drafter.id == RepairQuote.drafted_by_id)
        .outerjoin(biller, biller.id == RepairQuote.billing_by_id)
        .where(RepairQuote.ticket_id == ticket.id).order_by(RepairQuote.id.desc())).all()
    user = current_user
    is_tech, is_billing = user.has_role("technical_support"), user.has_role("billing")
    quotes = [{"quote": q, "invoice": inv, "drafter": d, "biller": b} for q, inv, d, b in rows]
    current = quotes[0] if quotes else None
    panel = {"quotes": quotes, "current": current, "is_tech": is_tech, "is_billing": is_billing,
             "draft_form": None, "lines_form": None, "submit_form": None, "cancel_form": None,
             "approve_form": None, "reject_form": None, "price_forms": {}, "complete_form": None,
             "drafted_by_me": False, "link": None}
    live = current if current and current["quote"].status in services.LIVE_QUOTE_STATUSES else None
    if live is None and is_tech and ticket.status not in ("resolved", "closed") and ticket.merged_into_id is None:
        panel["draft_form"] = form_for(DraftForm, "repairs.draft", number=ticket.number)
    if current is None:
        return panel
    quote = current["quote"]
    panel["steps"] = steps_of(quote, current["invoice"])
    qid = quote.id
    if quote.status in EDITABLE_QUOTE_STATUSES and is_tech:
        posted = bound("repairs.save_lines", quote_id=qid)
        panel["lines_form"] = lines_form(quote, posted, add_row=bool(posted and posted.get("add_row")))
        panel["submit_form"] = ActionForm(formdata=None)
        panel["cancel_form"] = form_for(CancelForm, "repairs.cancel", quote_id=qid)
    if quote.status == "pending_billing" and is_billing:
        panel["drafted_by_me"] = quote.drafted_by_id == user.id
        posted = bound("repairs.edit_price", quote_id=qid)
        for line in quote.lines:
            if not line.covered:
                mine = posted is not None and posted.get("line_id") == str(line.id)
                if mine:
                    form = PriceForm(formdata=posted)
                    form.validate()
                else:
                    form = PriceForm(formdata=None, line_id=str(line.id), unit_price=str(line.unit_price))
                panel["price_forms"][line.id] = form
        if not panel["drafted_by_me"]:
            panel["approve_form"] = ActionForm(formdata=None)
            panel["reject_form"] = form_for(RejectForm, "repairs.reject", quote_id=qid)
    if quote.status == "pending_customer":
        max_age = current_app.config.get("REPAIR_LINK_MAX_AGE") or 30 * 24 * 3600
        sent = quote.billing_at or quote.updated_at
        until = sent + timedelta(seconds=int(max_age))
        panel["link"] = {"sent": sent, "until": until, "expired": until < utcnow(), "version": quote.version}
    if quote.status == "in_work" and is_tech:
        panel["complete_form"] = form_for(CompleteForm, "repairs.complete", quote_id=qid)
    return panel


# ---------------------------------------------------------------- actions

def _ticket_or_404(number):
    from ..tickets.views import _ticket_or_404 as ticket_or_404

    return ticket_or_404(number)


def _tech_quote(quote_id):
    """(quote, ticket, user) for technical support who see the quote's ticket (404 / 403 otherwise)."""
    user = acting_user()
    quote = services.get_quote(quote_id)
    ticket = db.session.get(Ticket, quote.ticket_id)
    if ticket is None or not tickets.can_see(user, ticket):
        abort(404)
    if not user.has_role("technical_support"):
        raise Forbidden(_("Only technical support can draft and change repair quotes."))
    return quote, ticket, user


def _billing_quote(quote_id):
    """(quote, ticket, user) for billing (403 otherwise)."""
    user = acting_user()
    if not user.has_role("billing"):
        raise Forbidden(_("Only billing can decide on a repair quote."))
    quote = services.get_quote(quote_id)
    return quote, db.session.get(Ticket, quote.ticket_id), user


@bp.route("/tickets/<int:number>/repairs", methods=["POST"])
def draft(number):
    """Technical support starts the ticket's repair quote (pre-filled from the eligibility decision)."""
    ticket, user = _ticket_or_404(number)
    if not user.has_role("technical_support"):
        raise Forbidden(_("Only technical support can draft and change repair quotes."))
    return run(ticket, user, DraftForm(), lambda: services.draft_quote(ticket.id, user.id),
               _("Repair quote started: check its lines, then submit it to billing."))


def _line_dicts(form):
    """The typed lines without the blank rows; quantities checked here (the service counts them)."""
    out = []
    for n, entry in enumerate((e.form for e in form.lines.entries), start=1):
        if entry.is_blank():
            continue
        quantity = (entry.quantity.data or "1").strip()
        if not quantity.isdigit():
            raise DomainError(_("Line %(n)s: the quantity must be a whole number.", n=n), field="lines")
        out.append({"kind": entry.kind.data, "description": entry.description.data, "quantity": int(quantity),
                    "unit_price": (entry.unit_price.data or "").strip() or 0, "covered": bool(entry.covered.data),
                    "covered_reason": entry.covered_reason.data})
    return out


@bp.route("/repairs/<int:quote_id>/lines", methods=["POST"])
def save_lines(quote_id):
    """Technical support saves the lines of a draft (blank rows are left out); "Add a row" shows
    the form again with one more blank row, keeping what was typed."""
    from ..tickets.views import _render_ticket

    quote, ticket, user = _tech_quote(quote_id)
    form = QuoteLinesForm()
    if request.form.get("add_row"):
        return _render_ticket(ticket, user)
    return run(ticket, user, form, lambda: services.save_lines(quote.id, user.id, _line_dicts(form)),
               _("Quote lines saved."))


@bp.route("/repairs/<int:quote_id>/submit", methods=["POST"])
def submit(quote_id):
    quote, ticket, user = _tech_quote(quote_id)
    return run(ticket, user, ActionForm(), lambda: services.submit(quote.id, user.id),
               _("Quote submitted: the ticket waits for billing."))


@bp.route("/repairs/<int:quote_id>/cancel", methods=["POST"])
def cancel(quote_id):
    quote, ticket, user = _tech_quote(quote_id)
    form = CancelForm()
    return run(ticket, user, form, lambda: services.cancel(quote.id, user.id, form.reason.data),
               _("Repair quote cancelled."))


@bp.route("/repairs/<int:quote_id>/complete", methods=["POST"])
def complete(quote_id):
    quote, ticket, user = _tech_quote(quote_id)
    form = CompleteForm()
    return run(ticket, user, form, lambda: services.complete(quote.id, user.id, note=form.note.data),
               _("Repair marked done."))


@bp.route("/repairs/<int:quote_id>/price", methods=["POST"])
def edit_price(quote_id):
    """Billing changes a line's unit price, with the reason (audited)."""
    quote, ticket, user = _billing_quote(quote_id)
    form = PriceForm()

    def change():
        line_id = form.line_id.data or ""
        if not line_id.isdigit():
            raise DomainError(_("Quote line not found."), field="line_id")
        services.edit_price(quote.id, user.id, int(line_id), parse_amount(form.unit_price.data, "unit_price"),
                            form.reason.data)

    return run(ticket, user, form, change, _("Price changed."))


@bp.route("/repairs/<int:quote_id>/approve", methods=["POST"])
def approve(quote_id):
    quote, ticket, user = _billing_quote(quote_id)
    return run(ticket, user, ActionForm(), lambda: services.approve(quote.id, user.id),
               _("Quote approved: it was sent to the customer."))


@bp.route("/repairs/<int:quote_id>/reject", methods=["POST"])
def reject(quote_id):
    quote, ticket, user = _billing_quote(quote_id)
    form = RejectForm()
    return run(ticket, user, form, lambda: services.reject(quote.id, user.id, form.reason.data),
               _("Quote rejected: technical support is told why."))


# ---------------------------------------------------------------- the item timeline

def item_timeline(item):
    """warranty.views.TIMELINE_SOURCES: every repair quote on the item, at its latest step."""
    from ..billing.money import format_rupiah

    rows = db.session.execute(select(RepairQuote, Ticket.number, Invoice.number)
                              .join(Ticket, Ticket.id == RepairQuote.ticket_id)
                              .outerjoin(Invoice, Invoice.id == RepairQuote.invoice_id)
                              .where(RepairQuote.owned_item_id == item.id)).all()
    out = []
    for quote, number, invoice_number in rows:
        text = f"#{number}: {QUOTE_STATUS_LABELS.get(quote.status, quote.status)} · {format_rupiah(quote.total)}"
        if invoice_number:
            text += f" · {invoice_number}"
        out.append({"at": quote.updated_at, "kind": _("Paid repair"), "text": text,
                    "url": url_for("tickets.show", number=number)})
    return out


def _register_timeline():
    from ..warranty.views import TIMELINE_SOURCES

    if item_timeline not in TIMELINE_SOURCES:
        TIMELINE_SOURCES.append(item_timeline)


_register_timeline()
