"""Marketing announcements: write, pick a segment, preview, send now or schedule, and the report
(marketing and admin only: 403 for the other agents). Views are thin: helpdesk.campaigns.services
holds the rules."""
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from flask_login import current_user
from flask import Blueprint, current_app, flash, g, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from ..errors import DomainError, NotFound
from ..extensions import db
from ..web import form_error, roles_required
from ..warranty.models import Product
from . import segments, services
from .forms import (AUDIENCE_LABELS, COUNT_LABELS, KIND_LABELS, STATUS_LABELS, TOPIC_LABELS, ButtonForm,
                    CampaignForm, ScheduleForm)
from .models import Campaign

bp = Blueprint("campaigns", __name__, url_prefix="/campaigns")
ROLES = ("marketing", "admin")
PAGE_SIZE = 50


@bp.app_context_processor
def _nav():
    return {"campaigns_visible": lambda: hasattr(current_user, "has_role") and current_user.is_authenticated
            and any(current_user.has_role(r) for r in ROLES)}


@bp.context_processor
def _labels():
    from ..leads.forms import LINE_LABELS, SOURCE_LABELS, STAGE_LABELS

    return {"CAMPAIGN_STATUS_LABELS": STATUS_LABELS, "TOPIC_LABELS": TOPIC_LABELS, "AUDIENCE_LABELS": AUDIENCE_LABELS,
            "KIND_LABELS": KIND_LABELS, "COUNT_LABELS": COUNT_LABELS, "LINE_LABELS": LINE_LABELS,
            "SOURCE_LABELS": SOURCE_LABELS, "STAGE_LABELS": STAGE_LABELS}


def _products():
    return db.session.execute(select(Product).order_by(Product.name, Product.id)).scalars().all()


def _campaign_form(posted=True):
    form = CampaignForm() if posted else CampaignForm(formdata=None)
    form.product_ids.choices = [(str(p.id), f"{p.name} ({p.code})") for p in _products()]
    return form


def _refused(template, form, exc, **ctx):
    db.session.rollback()
    field = exc.details.get("field")
    if field in form and not form[field].errors:
        form[field].errors = list(form[field].errors) + [exc.message]
    flash(exc.message, "error")
    return render_template(template, form=form, **ctx), exc.status_code


def jakarta_to_utc(day, at):
    tz = ZoneInfo(current_app.config.get("HELPDESK_TIMEZONE") or "Asia/Jakarta")
    return datetime.combine(day, at, tzinfo=tz).astimezone(timezone.utc).replace(tzinfo=None)


@bp.route("")
@roles_required(*ROLES)
def index():
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    rows = db.session.execute(select(Campaign).order_by(Campaign.created_at.desc(), Campaign.id.desc())
                              .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)).scalars().all()
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    return render_template("campaigns/index.html", campaigns=rows, counts=services.report([c.id for c in rows]),
                           page=page, more=more)


@bp.route("/new", methods=["GET", "POST"])
@roles_required(*ROLES)
def new():
    form = _campaign_form(posted=request.method == "POST")
    if request.method == "GET":
        return render_template("campaigns/form.html", form=form, campaign=None)
    try:
        if not form.validate():
            raise form_error(form)
        c = services.create(current_user_id(), **form.fields())
    except DomainError as exc:
        return _refused("campaigns/form.html", form, exc, campaign=None)
    db.session.commit()
    flash(_("Announcement saved as a draft. Check the preview before sending."), "success")
    return redirect(url_for("campaigns.show", campaign_id=c.id))


@bp.route("/<int:campaign_id>/edit", methods=["GET", "POST"])
@roles_required(*ROLES)
def edit(campaign_id):
    c = services.get(campaign_id)
    form = _campaign_form(posted=request.method == "POST")
    if request.method == "GET":
        form.fill(c)
        return render_template("campaigns/form.html", form=form, campaign=c)
    try:
        if not form.validate():
            raise form_error(form)
        services.update(c.id, current_user_id(), **form.fields())
    except DomainError as exc:
        return _refused("campaigns/form.html", form, exc, campaign=c)
    db.session.commit()
    flash(_("Announcement saved."), "success")
    return redirect(url_for("campaigns.show", campaign_id=campaign_id))


def current_user_id():
    from flask_login import current_user

    return current_user.id


def _show(c, schedule_form=None, status=200):
    preview = services.preview(c) if c.status in ("draft", "scheduled") else None
    products = {p.id: p for p in _products()} if c.audience == "customers" else {}
    return render_template("campaigns/show.html", campaign=c, preview=preview,
                           counts=services.report([c.id])[c.id], segment=segments.describe(c.audience, c.segment),
                           products=products, schedule_form=schedule_form or ScheduleForm(formdata=None),
                           button_form=ButtonForm(formdata=None)), status


@bp.route("/<int:campaign_id>")
@roles_required(*ROLES)
def show(campaign_id):
    return _show(services.get(campaign_id))


@bp.route("/<int:campaign_id>/sample/<locale>")
@roles_required(*ROLES)
def sample(campaign_id, locale):
    """The HTML part of a sample mail, as sent (shown framed, sandboxed, on the campaign page)."""
    c = services.get(campaign_id)
    wanted = None if locale == "both" else locale
    preview = services.preview(c, n=0)
    found = next((s for s in preview["samples"] if s["locale"] == wanted), None)
    if found is None:
        raise NotFound(_("No recipient gets this language."))
    g.csp = "default-src 'none'; img-src data: https:; style-src 'unsafe-inline'; frame-ancestors 'self'; sandbox"
    g.allow_framing = True
    resp = make_response(found["html"])
    resp.headers["X-Frame-Options"] = "SAMEORIGIN"
    resp.headers["Content-Type"] = "text/html; charset=utf-8"
    return resp


@bp.route("/<int:campaign_id>/send", methods=["POST"])
@roles_required(*ROLES)
def send(campaign_id):
    c = services.get(campaign_id)
    form = ButtonForm()
    try:
        if not form.validate():
            raise DomainError(_("Check the form."))
        services.send_now(c.id, current_user_id())
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return _show(services.get(campaign_id), status=exc.status_code)
    db.session.commit()
    flash(_("The announcement is being sent."), "success")
    return redirect(url_for("campaigns.show", campaign_id=campaign_id))


@bp.route("/<int:campaign_id>/schedule", methods=["POST"])
@roles_required(*ROLES)
def schedule(campaign_id):
    c = services.get(campaign_id)
    form = ScheduleForm()
    try:
        if not form.validate():
            raise form_error(form)
        services.schedule(c.id, current_user_id(), jakarta_to_utc(form.send_date.data, form.send_time.data))
    except DomainError as exc:
        db.session.rollback()
        field = exc.details.get("field")
        if field in form and not form[field].errors:
            form[field].errors = list(form[field].errors) + [exc.message]
        flash(exc.message, "error")
        return _show(services.get(campaign_id), schedule_form=form, status=exc.status_code)
    db.session.commit()
    flash(_("The announcement is scheduled."), "success")
    return redirect(url_for("campaigns.show", campaign_id=campaign_id))


@bp.route("/<int:campaign_id>/cancel", methods=["POST"])
@roles_required(*ROLES)
def cancel(campaign_id):
    c = services.get(campaign_id)
    form = ButtonForm()
    try:
        if not form.validate():
            raise DomainError(_("Check the form."))
        services.cancel(c.id, current_user_id())
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return _show(services.get(campaign_id), status=exc.status_code)
    db.session.commit()
    flash(_("The announcement is cancelled."), "success")
    return redirect(url_for("campaigns.show", campaign_id=campaign_id))
