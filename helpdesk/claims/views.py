"""Cashback claims in the agent UI: the ticket page's claim card and its actions.

Request (any agent who sees the ticket, while the guarantee can be claimed) → verify or reject
(technical support) → approve or reject (billing, not the verifier) → mark paid (billing).
Views are thin: helpdesk.claims.services holds the rules. Billing acts from the ticket page or
from the billing queue (/billing), so billing's steps do not need to see the ticket; the
technical steps do (404 otherwise, as on the ticket page).

A refused form comes back on the ticket page with what was typed and the error (the card's forms
bind to the request when it was posted to their endpoint), with the error's status code.
"""
from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy import exists, select
from sqlalchemy.orm import aliased

from ..auth.models import User
from ..billing import money
from ..errors import DomainError, Forbidden
from ..extensions import db
from ..repairs.models import RepairQuote
from ..tickets import services as tickets
from ..tickets.models import Ticket
from ..timeutil import utcnow
from ..warranty.models import OwnedItem
from . import services
from .forms import ClaimApproveForm, ClaimPayForm, ClaimRejectForm, ClaimRequestForm, ClaimVerifyForm
from .models import CashbackClaim

bp = Blueprint("claims", __name__)

CLAIM_STATUS_LABELS = {"requested": _l("Requested"), "verified": _l("Verified"), "approved": _l("Approved"),
                       "paid": _l("Paid"), "rejected": _l("Rejected")}
CLAIM_STATUS_CSS = {"requested": "text-bg-warning", "verified": "text-bg-info", "approved": "text-bg-primary",
                    "paid": "text-bg-success", "rejected": "text-bg-secondary"}
STAGE_LABELS = {"verification": _l("at verification"), "approval": _l("at approval")}


@bp.before_request
@login_required
def _require_login():
    """Agents only."""


@bp.app_context_processor
def _labels():
    return {"CLAIM_STATUS_LABELS": CLAIM_STATUS_LABELS, "CLAIM_STATUS_CSS": CLAIM_STATUS_CSS,
            "CLAIM_STAGE_LABELS": STAGE_LABELS}


# ---------------------------------------------------------------- shared by the desk's money views

def bound(endpoint, **ids):
    """The request's form data when it was posted to `endpoint` for these ids (a refused form keeps
    what was typed), else None."""
    if request.method != "POST" or request.endpoint != endpoint:
        return None
    if any(request.view_args.get(k) != v for k, v in ids.items()):
        return None
    return request.form


def form_for(cls, endpoint, data=None, **ids):
    """A form of `cls`: bound to the request (and validated, so its errors show) when it was posted
    to `endpoint` for these ids, else empty (or filled from `data`)."""
    posted = bound(endpoint, **ids)
    if posted is None:
        return cls(formdata=None, **(data or {}))
    form = cls(formdata=posted)
    form.validate()
    return form


def acting_user():
    return db.session.get(User, current_user.id)


def wants_billing():
    return request.form.get("back") == "billing"


def after(ticket, user, message):
    """Commit, flash, and go back: to the billing queue when the action came from there (or the
    agent cannot see the ticket any more), else to the ticket page."""
    db.session.commit()
    if message:
        flash(message, "success")
    if ticket is not None and not wants_billing():
        ticket = db.session.get(Ticket, ticket.id)
        if ticket is not None and tickets.can_see(user, ticket):
            return redirect(url_for("tickets.show", number=ticket.number))
    if user.has_role("billing"):
        return redirect(url_for("billing.index"))
    return redirect(url_for("tickets.index"))


def failed(ticket, user, exc):
    """Roll back and show the error: the ticket page again with the typed form (and the error's
    status code), or a flash and the billing queue when the action came from there."""
    from ..tickets.views import _render_ticket

    db.session.rollback()
    flash(exc.message, "error")
    ticket = db.session.get(Ticket, ticket.id) if ticket is not None else None
    if ticket is not None and not wants_billing() and tickets.can_see(user, ticket):
        return _render_ticket(ticket, user, status_code=exc.status_code)
    if user.has_role("billing"):
        return redirect(url_for("billing.index"))
    raise exc


def form_error(form):
    """The first validation error of a form, as a DomainError (shown like a service's errors)."""
    for field in form:
        if field.errors:
            return DomainError(f"{field.label.text}: {field.errors[0]}", field=field.name)
    return DomainError(_("Check the form."))


def parse_amount(text, field, required=True):
    try:
        value = money.parse_rupiah(text)
    except money.MoneyError:
        raise DomainError(_("Enter the amount in whole rupiah."), field=field) from None
    if value is None and required:
        raise DomainError(_("Enter the amount in whole rupiah."), field=field)
    return value


def run(ticket, user, form, change, success):
    """Validate `form`, apply `change()` through a service, commit and go back; errors come back
    on the page with their status code."""
    try:
        if not form.validate_on_submit():
            raise form_error(form)
        change()
    except DomainError as exc:
        return failed(ticket, user, exc)
    return after(ticket, user, success)


# ---------------------------------------------------------------- the ticket page's card

def money_probe(ticket):
    """(has claims, has repair quotes): one statement for both cards, once per request, so a ticket
    with neither (most of them) costs the ticket page one statement more, not two."""
    cache = request.environ.setdefault("helpdesk.money_probe", {})  # this request's (g may outlive it)
    if ticket.id not in cache:
        row = db.session.execute(select(exists().where(CashbackClaim.ticket_id == ticket.id),
                                        exists().where(RepairQuote.ticket_id == ticket.id))).one()
        cache[ticket.id] = (bool(row[0]), bool(row[1]))
    return cache[ticket.id]


@bp.app_template_global()
def claim_panel(ticket):
    """What the claim card shows: the ticket's claims (one statement, with the item's amount paid
    and the people's names) and the forms this agent may use."""
    claims = _claims_of(ticket) if money_probe(ticket)[0] else []
    live = next((c for c in claims if c["claim"].status != "rejected"), None)
    user = current_user
    is_tech, is_billing = user.has_role("technical_support"), user.has_role("billing")
    panel = {"claims": claims, "live": live, "is_tech": is_tech, "is_billing": is_billing,
             "can_request": live is None and ticket.merged_into_id is None and services.claimable(ticket),
             "request_form": None, "verify_form": None, "reject_form": None, "approve_form": None, "pay_form": None}
    if panel["can_request"]:
        panel["request_form"] = form_for(ClaimRequestForm, "claims.request", number=ticket.number)
    if live is not None:
        panel.update(claim_forms(live["claim"], live["item_paid"], user))
    return panel


def _claims_of(ticket):
    """The ticket's claims, newest first, with the item's amount paid and the people's names."""
    users = {k: aliased(User) for k in ("requested", "verified", "approved", "paid", "rejected")}
    q = select(CashbackClaim, OwnedItem.amount_paid, *(u.name for u in users.values())) \
        .outerjoin(OwnedItem, OwnedItem.id == CashbackClaim.owned_item_id)
    for key, u in users.items():
        q = q.outerjoin(u, u.id == getattr(CashbackClaim, f"{key}_by_id"))
    rows = db.session.execute(q.where(CashbackClaim.ticket_id == ticket.id).order_by(CashbackClaim.id.desc())).all()
    return [{"claim": row[0], "item_paid": row[1], "names": dict(zip(users, row[2:]))} for row in rows]


def claim_forms(claim, item_paid, user):
    """The forms `user` may use on this claim now (None for the others)."""
    forms = {}
    cid = claim.id
    if claim.status == "requested" and user.has_role("technical_support"):
        forms["verify_form"] = form_for(ClaimVerifyForm, "claims.verify", claim_id=cid)
        forms["reject_form"] = form_for(ClaimRejectForm, "claims.reject", claim_id=cid)
    elif claim.status == "verified" and user.has_role("billing") and claim.verified_by_id != user.id:
        forms["approve_form"] = form_for(ClaimApproveForm, "claims.approve", claim_id=cid)
        forms["needs_item_paid"] = item_paid is None
        forms["reject_form"] = form_for(ClaimRejectForm, "claims.reject", claim_id=cid)
    elif claim.status == "verified" and user.has_role("billing"):
        forms["verifier_note"] = _("You verified this claim, so someone else in billing must decide on it.")
    elif claim.status == "approved" and user.has_role("billing"):
        forms["pay_form"] = form_for(ClaimPayForm, "claims.pay", data={"paid_on": services.rules.complaint_day(utcnow())}, claim_id=cid)
    return forms


# ---------------------------------------------------------------- actions

def _ticket_or_404(number):
    from ..tickets.views import _ticket_or_404 as ticket_or_404

    return ticket_or_404(number)


def _claim_ticket(claim_id, *, need_sight):
    """(claim, ticket, user). With need_sight the agent must see the claim's ticket (404 otherwise)."""
    user = acting_user()
    claim = services.get_claim(claim_id)
    ticket = db.session.get(Ticket, claim.ticket_id)
    if need_sight and (ticket is None or not tickets.can_see(user, ticket)):
        abort(404)
    return claim, ticket, user


def _billing_only(user, message):
    if not user.has_role("billing"):
        raise Forbidden(message)


@bp.route("/tickets/<int:number>/claims", methods=["POST"], endpoint="request")
def request_claim(number):
    """Any agent who sees the ticket asks for the cashback on the customer's behalf."""
    ticket, user = _ticket_or_404(number)
    form = ClaimRequestForm()
    return run(ticket, user, form, lambda: services.request_claim(ticket.id, user.id, form.note.data),
               _("Cashback claim requested."))


@bp.route("/claims/<int:claim_id>/verify", methods=["POST"])
def verify(claim_id):
    """Technical support confirms the defect (with a note)."""
    claim, ticket, user = _claim_ticket(claim_id, need_sight=True)
    if not user.has_role("technical_support"):
        raise Forbidden(_("Only technical support can verify a claim."))
    form = ClaimVerifyForm()
    return run(ticket, user, form, lambda: services.verify(claim.id, user.id, form.note.data),
               _("Claim verified: it now waits for billing."))


@bp.route("/claims/<int:claim_id>/reject", methods=["POST"])
def reject(claim_id):
    """Technical support rejects a requested claim; billing a verified one (with the reason)."""
    user = acting_user()
    claim = services.get_claim(claim_id)
    billing_step = claim.status == "verified" and user.has_role("billing")
    claim, ticket, user = _claim_ticket(claim_id, need_sight=not billing_step)
    if not (billing_step or user.has_role("technical_support")):
        raise Forbidden(_("Only technical support can reject a claim at verification."))
    form = ClaimRejectForm()
    return run(ticket, user, form, lambda: services.reject(claim.id, user.id, form.reason.data),
               _("Claim rejected: the customer is told why."))


@bp.route("/claims/<int:claim_id>/approve", methods=["POST"])
def approve(claim_id):
    """Billing (not the verifier) approves the amount; enters what was paid for the item when unknown."""
    user = acting_user()
    _billing_only(user, _("Only billing can approve a claim."))
    claim, ticket, user = _claim_ticket(claim_id, need_sight=False)
    form = ClaimApproveForm()

    def change():
        amount = parse_amount(form.amount.data, "amount")
        item_paid = parse_amount(form.item_paid.data, "item_paid", required=False)
        services.approve(claim.id, user.id, amount, item_paid=item_paid, note=form.note.data)

    return run(ticket, user, form, change, _("Claim approved."))


@bp.route("/claims/<int:claim_id>/pay", methods=["POST"])
def pay(claim_id):
    """Billing records the cashback payment (reference and date)."""
    user = acting_user()
    _billing_only(user, _("Only billing can pay a claim."))
    claim, ticket, user = _claim_ticket(claim_id, need_sight=False)
    form = ClaimPayForm()
    return run(ticket, user, form,
               lambda: services.mark_paid(claim.id, user.id, form.reference.data, form.paid_on.data),
               _("Claim marked paid."))


# ---------------------------------------------------------------- the item timeline

def item_timeline(item):
    """warranty.views.TIMELINE_SOURCES: every claim on the item, at its latest step."""
    rows = db.session.execute(select(CashbackClaim, Ticket.number).join(Ticket, Ticket.id == CashbackClaim.ticket_id)
                              .where(CashbackClaim.owned_item_id == item.id)).all()
    out = []
    for claim, number in rows:
        text = f"#{number}: {CLAIM_STATUS_LABELS.get(claim.status, claim.status)}"
        if claim.amount and claim.status in ("approved", "paid"):
            text += " · " + money.format_rupiah(claim.amount)
        out.append({"at": claim.updated_at, "kind": _("Cashback claim"), "text": text,
                    "url": url_for("tickets.show", number=number)})
    return out


def _register_timeline():
    from ..warranty.views import TIMELINE_SOURCES

    if item_timeline not in TIMELINE_SOURCES:
        TIMELINE_SOURCES.append(item_timeline)


_register_timeline()
