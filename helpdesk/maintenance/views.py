"""Technical support's maintenance windows: list, create, edit, preview of the affected subscribers,
publish, cancel, and the delivery log per recipient.

Technical support and admins manage windows; customer support may read them (403 for the others).
Start and end are typed in Asia/Jakarta and stored UTC. Views are thin: helpdesk.maintenance.services
holds the rules.
"""
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from ..errors import DomainError
from ..extensions import db
from ..timeutil import to_local, utcnow
from ..warranty.models import Product
from . import schedule, services
from .forms import (DELIVERY_LABELS, IMPACT_LABELS, NOTICE_LABELS, PHASE_LABELS, STATUS_LABELS, TARGET_LABELS,
                    ButtonForm, CancelForm, WindowForm)

bp = Blueprint("maintenance", __name__, url_prefix="/maintenance")

MANAGER_ROLES = ("technical_support", "admin")
READER_ROLES = MANAGER_ROLES + ("customer_support",)


def _has(user, roles):
    return bool(getattr(user, "is_authenticated", False) and hasattr(user, "has_role")
                and any(user.has_role(r) for r in roles))


def may_manage(user):
    return _has(user, MANAGER_ROLES)


def may_read(user):
    return _has(user, READER_ROLES)


@bp.before_request
@login_required
def _readers_only():
    if not may_read(current_user):
        abort(403)


def _managers_only():
    if not may_manage(current_user):
        abort(403)


@bp.app_context_processor
def _nav():
    def ticket_windows(ticket_id):
        if not may_read(current_user):
            return []
        return services.windows_of_ticket(ticket_id)

    return {"maintenance_visible": lambda: may_read(current_user), "ticket_maintenance_windows": ticket_windows}


@bp.context_processor
def _labels():
    return {"IMPACT_LABELS": IMPACT_LABELS, "STATUS_LABELS": STATUS_LABELS, "PHASE_LABELS": PHASE_LABELS,
            "NOTICE_LABELS": NOTICE_LABELS, "DELIVERY_LABELS": DELIVERY_LABELS, "TARGET_LABELS": TARGET_LABELS,
            "may_manage": may_manage(current_user)}


# ---------------------------------------------------------------- helpers

def jakarta_to_utc(day, at):
    tz = ZoneInfo(current_app.config.get("HELPDESK_TIMEZONE") or "Asia/Jakarta")
    return datetime.combine(day, at, tzinfo=tz).astimezone(timezone.utc).replace(tzinfo=None)


def _products():
    return db.session.execute(select(Product).order_by(Product.name, Product.id)).scalars().all()


def _form(w=None):
    form = WindowForm()
    form.product_ids.choices = [(str(p.id), f"{p.name} ({p.code})") for p in _products()]
    if request.method == "GET":
        if w is not None:
            servers, product_ids, item_ids = services.targets_of(w)
            start, end = to_local(w.starts_at), to_local(w.ends_at)
            form.title_id.data, form.title_en.data = w.title_id, w.title_en
            form.description_id.data, form.description_en.data = w.description_id, w.description_en
            form.start_date.data, form.start_time.data = start.date(), start.time().replace(tzinfo=None)
            form.end_date.data, form.end_time.data = end.date(), end.time().replace(tzinfo=None)
            form.impact.data, form.announce_days.data = w.impact, w.announce_days
            form.servers.data = ", ".join(servers)
            form.product_ids.data = [str(p) for p in product_ids]
            form.item_ids.data = ", ".join(str(i) for i in item_ids)
        else:
            form.announce_days.data = current_app.config["MAINTENANCE_ANNOUNCE_DAYS"]
    return form


def _fields(form):
    return {"title_id": form.title_id.data, "title_en": form.title_en.data,
            "description_id": form.description_id.data, "description_en": form.description_en.data,
            "starts_at": jakarta_to_utc(form.start_date.data, form.start_time.data),
            "ends_at": jakarta_to_utc(form.end_date.data, form.end_time.data),
            "impact": form.impact.data, "announce_days": form.announce_days.data,
            "servers": [form.servers.data or ""], "product_ids": [int(p) for p in form.product_ids.data or []
                                                                 if str(p).isdigit()],
            "item_ids": [form.item_ids.data or ""]}


def _error_on(form, exc):
    field = getattr(form, exc.details.get("field") or "", None)
    if field is not None and hasattr(field, "errors"):
        field.errors = list(field.errors) + [exc.message]
    else:
        flash(exc.message, "error")


def _render_form(form, w=None, status=200):
    return render_template("maintenance/form.html", form=form, window=w, servers=services.known_servers()), status


# ---------------------------------------------------------------- pages

@bp.route("")
def index():
    lists = services.windows(utcnow())
    return render_template("maintenance/index.html", lists=lists, products={p.id: p for p in _products()})


@bp.route("/new", methods=["GET", "POST"])
def new():
    _managers_only()
    form = _form()
    if request.method == "POST":
        if not form.validate_on_submit():
            return _render_form(form, status=400)
        try:
            w = services.create_window(current_user.id, **_fields(form))
        except DomainError as exc:
            db.session.rollback()
            _error_on(form, exc)
            return _render_form(form, status=exc.status_code)
        db.session.commit()
        flash(_("Maintenance window saved as a draft. Check the affected customers, then publish it."), "success")
        return redirect(url_for("maintenance.show", window_id=w.id))
    return _render_form(form)


@bp.route("/<int:window_id>")
def show(window_id):
    w = services.get(window_id)
    now = utcnow()
    info = services.affected(window_id)
    # the announcement as the first affected subscriber reads it (a placeholder when there is none)
    first = info["customers"][0] if info["customers"] else {"name": "", "items": []}
    samples = {}
    for lang in ("id", "en"):
        ctx = services.mail_context(w, "announce", first["items"])
        samples[lang] = {"subject": services.subject("announce", lang, w),
                         "text": render_template(f"mail/{lang}/maint_announce.txt", lang=lang,
                                                 customer_name=first["name"], **ctx).strip()}
    counts = {}
    for d in services.delivery_log(window_id):
        key = (d["delivery"].kind, d["status"])
        counts[key] = counts.get(key, 0) + 1
    hours = current_app.config["MAINTENANCE_REMINDER_HOURS"]
    return render_template("maintenance/show.html", window=w, info=info, samples=samples, phase=schedule.phase(w, now),
                           announce_at=schedule.announce_time(w.starts_at, w.announce_days),
                           reminder_at=schedule.reminder_time(w.starts_at, hours), delivery_counts=counts,
                           tickets=services.linked_tickets(window_id), targets=services.targets_of(w),
                           products={p.id: p for p in _products()}, button=ButtonForm(), cancel_form=CancelForm())


@bp.route("/<int:window_id>/edit", methods=["GET", "POST"])
def edit(window_id):
    _managers_only()
    w = services.get(window_id)
    form = _form(w)
    if request.method == "POST":
        if not form.validate_on_submit():
            return _render_form(form, w, status=400)
        try:
            services.update_window(window_id, current_user.id, change_note=form.change_note.data, **_fields(form))
        except DomainError as exc:
            db.session.rollback()
            _error_on(form, exc)
            return _render_form(form, services.get(window_id), status=exc.status_code)
        db.session.commit()
        flash(_("Maintenance window saved."), "success")
        return redirect(url_for("maintenance.show", window_id=window_id))
    return _render_form(form, w)


@bp.route("/<int:window_id>/publish", methods=["POST"])
def publish(window_id):
    _managers_only()
    form = ButtonForm()
    if not form.validate_on_submit():
        flash(_("The form has expired. Please try again."), "error")
        return redirect(url_for("maintenance.show", window_id=window_id))
    try:
        services.publish(window_id, current_user.id)
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("maintenance.show", window_id=window_id))
    db.session.commit()
    flash(_("Published: the affected subscribers are notified on schedule."), "success")
    return redirect(url_for("maintenance.show", window_id=window_id))


@bp.route("/<int:window_id>/cancel", methods=["POST"])
def cancel(window_id):
    _managers_only()
    form = CancelForm()
    if not form.validate_on_submit():
        flash(_("Give the reason for the cancellation."), "error")
        return redirect(url_for("maintenance.show", window_id=window_id))
    try:
        services.cancel(window_id, current_user.id, form.reason.data)
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("maintenance.show", window_id=window_id))
    db.session.commit()
    flash(_("Cancelled: those already notified are told."), "success")
    return redirect(url_for("maintenance.show", window_id=window_id))


@bp.route("/<int:window_id>/log")
def log(window_id):
    w = services.get(window_id)
    return render_template("maintenance/log.html", window=w, rows=services.delivery_log(window_id))
