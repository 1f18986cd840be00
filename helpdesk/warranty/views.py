"""Warranty in the agent UI: the per-item timeline, the ticket sidebar's actions (link an item,
set the issue category, change the complaint date) and the badge helpers templates call.

Views are thin: the changes go through helpdesk.warranty.services, which re-evaluate the ticket.
"""
from datetime import date

from flask import Blueprint, abort, flash, redirect, request, render_template, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from ..auth.models import User
from ..errors import DomainError, Forbidden
from ..extensions import db
from ..tickets.models import Ticket
from . import badges, rules, services
from .forms import ITEM_STATUS_LABELS, CategoryForm, ComplaintDateForm, LinkItemForm, ServerForm
from .models import EligibilityDecision, IssueCategory, OwnedItem

bp = Blueprint("warranty", __name__)

# Other parts of the item's story (cashback claims, paid repairs, maintenance) register here a
# callable item -> [{"at": naive-UTC datetime, "kind": str, "text": str, "url": str | None}]; the
# item timeline shows their entries, newest first, beside the tickets.
TIMELINE_SOURCES = []

TRIGGER_LABELS = {"intake": _l("At intake"), "item": _l("Product linked"), "category": _l("Category changed"),
                  "complaint_date": _l("Complaint date changed"), "recheck": _l("Re-checked")}


@bp.record_once
def _globals(state):
    state.app.jinja_env.globals["CHARGE_CODES"] = rules.CHARGE_CODES


@bp.before_request
@login_required
def _require_login():
    """Agents only."""


# ---------------------------------------------------------------- helpers for templates

def current_lang():
    return badges.lang_of(get_locale())


@bp.app_template_global()
def charge_badge_of(ticket):
    """The ticket's charge badge ({code, text, css}) from its columns, or None."""
    return badges.charge_badge(ticket.charge, ticket.charge_until, current_lang())


@bp.app_template_global()
def cashback_badge_of(ticket):
    """'Cashback possible — 12 days left' from ticket.cashback_until and today in Asia/Jakarta, or None."""
    return badges.cashback_label(ticket.cashback_until, services.local_today(), current_lang())


@bp.app_template_global()
def charge_label(code, until=None):
    return badges.charge_label(code, until, current_lang())


@bp.app_template_global()
def item_status_label(status):
    return ITEM_STATUS_LABELS.get(status, status)


@bp.app_template_global()
def format_day(day, short=False):
    """A date in the page's language: '12 Januari 2027' / '12 January 2027'; '—' for none."""
    return rules.format_date(day, current_lang(), short=short) if day is not None else "—"


def covering_contracts(item, contracts):
    """The contracts (any time) whose plan covers the item's product."""
    product = services.product_terms(item.product)
    return [c for c in contracts if services.contract_terms(c).covers(product)]


def _item_label(item):
    parts = [item.product.name]
    if item.identifier:
        parts.append(item.identifier)
    return " · ".join(parts) + f" ({item_status_label(item.status)})"


def _category_label(category, lang):
    return category.name_id if lang == "id" else category.name_en


def _bound(endpoint):
    """Form data of this request when it was posted to `endpoint` (a rejected form keeps what
    was typed), else None: the sidebar's forms start from the ticket."""
    return None if request.endpoint != endpoint or request.method != "POST" else request.form


@bp.app_template_global()
def warranty_panel(ticket):
    """Everything the ticket sidebar's warranty card shows (a constant number of queries)."""
    lang = current_lang()
    items = db.session.execute(select(OwnedItem).options(joinedload(OwnedItem.product))
                               .where(OwnedItem.customer_id == ticket.customer_id)
                               .order_by(OwnedItem.purchase_date.desc(), OwnedItem.id)).scalars().all()
    item = next((i for i in items if i.id == ticket.owned_item_id), None)
    categories = db.session.execute(select(IssueCategory).where(IssueCategory.active.is_(True))
                                    .order_by(IssueCategory.name_en)).scalars().all()
    # the decision history with each actor's name, in one statement
    history = db.session.execute(
        select(EligibilityDecision, User.name).outerjoin(User, User.id == EligibilityDecision.actor_user_id)
        .where(EligibilityDecision.ticket_id == ticket.id).order_by(EligibilityDecision.id.desc())).all()
    link_form = LinkItemForm(formdata=_bound("warranty.set_item"), item_id=str(ticket.owned_item_id or ""))
    link_form.item_id.choices = [("", _("No product linked"))] + [(str(i.id), _item_label(i)) for i in items]
    category_form = CategoryForm(formdata=_bound("warranty.set_category"),
                                 category_id=str(ticket.issue_category_id or ""))
    category_form.category_id.choices = [("", _("(no category)"))] + [
        (str(c.id), _category_label(c, lang)) for c in categories]
    can_date = current_user.is_authenticated and current_user.has_role("technical_support")
    complaint_form = None
    if can_date:
        complaint_form = ComplaintDateForm(formdata=_bound("warranty.set_complaint_date"),
                                           complaint_date=ticket.complaint_date)
        if request.endpoint == "warranty.set_complaint_date" and request.method == "POST":
            complaint_form.validate()
    eligibility = ticket.eligibility or {}
    category = next((c for c in categories if c.id == ticket.issue_category_id), None)
    if category is None and ticket.issue_category_id:
        category = db.session.get(IssueCategory, ticket.issue_category_id)
    return {
        "item": item, "item_label": _item_label(item) if item else None, "lang": lang,
        "charge": charge_badge_of(ticket), "cashback": cashback_badge_of(ticket),
        "explanation": (eligibility.get("explanation") or {}).get(lang),
        "cashback_reason": ((eligibility.get("cashback") or {}).get("reason") or {}).get(lang),
        "category": _category_label(category, lang) if category else None,
        "history": [{"at": d.created_at, "trigger": TRIGGER_LABELS.get(d.trigger, d.trigger), "actor": actor,
                     "charge": badges.charge_label(d.charge, _until(d), lang),
                     "explanation": ((d.snapshot or {}).get("explanation") or {}).get(lang),
                     "cashback": d.cashback_eligible} for d, actor in history],
        "link_form": link_form, "category_form": category_form, "complaint_form": complaint_form,
        "can_date": can_date,
    }


def _until(decision):
    raw = (decision.snapshot or {}).get("until")
    return date.fromisoformat(raw) if raw else None


# ---------------------------------------------------------------- the item timeline

@bp.route("/items/<int:item_id>")
def item(item_id):
    """One owned item: its details, its contracts and every ticket that touched it, newest first."""
    owned = db.session.get(OwnedItem, item_id)
    if owned is None:
        abort(404)
    tickets = db.session.execute(select(Ticket).where(Ticket.owned_item_id == owned.id)
                                 .order_by(Ticket.created_at.desc(), Ticket.id.desc())).scalars().all()
    contracts = covering_contracts(owned, services.contracts_of(owned.customer_id))
    parent = db.session.get(OwnedItem, owned.bundle_parent_id) if owned.bundle_parent_id else None
    bundled = db.session.execute(select(OwnedItem).where(OwnedItem.bundle_parent_id == owned.id)
                                 .order_by(OwnedItem.id)).scalars().all()
    events = sorted((e for source in TIMELINE_SOURCES for e in source(owned)), key=lambda e: e["at"], reverse=True)
    server_form = None
    if any(current_user.has_role(r) for r in services.SERVER_ROLES):
        server_form = ServerForm(server=owned.server)
    return render_template("warranty/item.html", item=owned, customer=owned_customer(owned), tickets=tickets,
                           contracts=contracts, parent=parent, bundled=bundled, events=events,
                           server_form=server_form)


@bp.route("/items/<int:item_id>/server", methods=["POST"])
def item_server(item_id):
    """Technical support sets the server an item runs on (maintenance windows on a server reach it)."""
    form = ServerForm()
    if not form.validate_on_submit():
        flash(_("Enter a server name such as srv1.example.co.id."), "error")
        return redirect(url_for("warranty.item", item_id=item_id))
    try:
        services.set_server(item_id, current_user.id, form.server.data)
    except DomainError as exc:
        db.session.rollback()
        if exc.status_code in (403, 404):
            abort(exc.status_code)
        flash(exc.message, "error")
        return redirect(url_for("warranty.item", item_id=item_id))
    db.session.commit()
    flash(_("Server saved."), "success")
    return redirect(url_for("warranty.item", item_id=item_id))


def owned_customer(owned):
    from ..customers.models import Customer

    return db.session.get(Customer, owned.customer_id)


# ---------------------------------------------------------------- the ticket sidebar's actions

def _ticket_or_404(number):
    """The ticket and the acting agent; 404 when the agent cannot see it (as on the ticket page)."""
    from ..tickets.views import _ticket_or_404 as ticket_or_404

    return ticket_or_404(number)


def _back(ticket):
    return redirect(url_for("tickets.show", number=ticket.number))


def _apply(ticket, change, success):
    try:
        change()
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return _back(ticket)
    db.session.commit()
    flash(success, "success")
    return _back(ticket)


def _int_or_none(value):
    value = (value or "").strip()
    return int(value) if value.isdigit() else None


def _choice_action(number, form_cls, field, change, success):
    """A sidebar select (an id or none) applied through a warranty service, then back to the ticket."""
    ticket, user = _ticket_or_404(number)
    form = form_cls()
    if not form.validate_on_submit():
        abort(400)
    chosen = _int_or_none(getattr(form, field).data)
    return _apply(ticket, lambda: change(ticket.id, user.id, chosen), success)


@bp.route("/tickets/<int:number>/item", methods=["POST"])
def set_item(number):
    """Link the ticket to one of its customer's items (or none); the ticket is evaluated again."""
    return _choice_action(number, LinkItemForm, "item_id", services.set_item, _("Product link saved."))


@bp.route("/tickets/<int:number>/category", methods=["POST"])
def set_category(number):
    """Set the ticket's issue category (or none); the ticket is evaluated again."""
    return _choice_action(number, CategoryForm, "category_id", services.set_category, _("Issue category saved."))


@bp.route("/tickets/<int:number>/complaint-date", methods=["POST"])
def set_complaint_date(number):
    """Technical support only: a new complaint date with a reason (audited); evaluated again."""
    from ..tickets.views import _render_ticket

    ticket, user = _ticket_or_404(number)
    if not user.has_role("technical_support"):
        raise Forbidden(_("Only technical support can change the complaint date."))
    form = ComplaintDateForm()
    if not form.validate_on_submit():
        flash(_("Give the new complaint date and the reason for it."), "error")
        return _render_ticket(ticket, user, status_code=400)
    try:
        services.set_complaint_date(ticket.id, user.id, form.complaint_date.data, form.reason.data)
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return _render_ticket(db.session.get(Ticket, ticket.id), user, status_code=exc.status_code)
    db.session.commit()
    flash(_("Complaint date changed."), "success")
    return _back(ticket)
