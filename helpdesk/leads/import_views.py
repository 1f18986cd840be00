"""CSV import of leads (marketing and admin only: 403 for the other agents).

- GET/POST /leads/import: the upload form (file, source, campaign, owner) and the recent imports.
- GET /leads/import/<id>: the preview (what the first rows would become, the totals, Start) while
  the import is in preview; then the progress (a bar polled by static/js/lead_import.js, with a
  meta refresh for browsers without JavaScript); once done, the report (created, merged with a
  link to each lead, rejected with the reasons).
- POST /leads/import/<id>/start, GET /leads/import/<id>/status.json, GET /leads/import/<id>/report.csv.
Views are thin: helpdesk.leads.imports holds the rules.
"""
import csv
import io

from flask import Blueprint, Response, abort, flash, jsonify, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import SelectField, StringField
from wtforms.validators import Length, Optional

from ..errors import DomainError
from ..extensions import db
from ..warranty.admin_forms import LINE_LABELS
from . import imports, services
from .importer import MAX_BYTES, MAX_ROWS
from .forms import SOURCE_LABELS
from .models import LEAD_SOURCES, PRODUCT_LINES

bp = Blueprint("lead_import", __name__, url_prefix="/leads/import")

FIELD_NAMES = {"name": _l("Name"), "company": _l("Company"), "email": _l("Email"), "phone": _l("Phone"),
               "source": _l("Source"), "campaign": _l("Campaign or promo code"),
               "product_lines": _l("Product lines"), "notes": _l("Notes")}
LIST_LIMIT = 500
STATUS_LABELS = {"preview": _l("Preview"), "queued": _l("Queued"), "running": _l("Running"), "done": _l("Done"),
                 "failed": _l("Failed")}


class ImportForm(FlaskForm):
    file = FileField(_l("CSV file"), validators=[FileRequired(_l("Choose a CSV file."))])
    source = SelectField(_l("Source"), choices=[(s, SOURCE_LABELS[s]) for s in LEAD_SOURCES], default="seminar")
    campaign = StringField(_l("Campaign or promo code"), validators=[Optional(), Length(max=80)])
    owner_id = SelectField(_l("Owner"), coerce=int, default=0)


class StartForm(FlaskForm):
    """Only the CSRF token."""


def _may_manage(user):
    return bool(getattr(user, "is_authenticated", False) and hasattr(user, "has_role")
                and any(user.has_role(r) for r in services.MANAGER_ROLES))


@bp.before_request
@login_required
def _marketing_only():
    if not _may_manage(current_user):
        abort(403)


@bp.context_processor
def _labels():
    return {"SOURCE_LABELS": SOURCE_LABELS, "LINE_LABELS": {ln: LINE_LABELS.get(ln, ln) for ln in PRODUCT_LINES},
            "FIELD_NAMES": FIELD_NAMES, "IMPORT_STATUS_LABELS": STATUS_LABELS, "reason_text": imports.reason_text,
            "problem_text": imports.importer.problem_text}


def _form():
    form = ImportForm()
    form.owner_id.choices = [(0, _("Nobody"))] + [(u.id, u.name) for u in imports.marketing_agents()]
    if not form.is_submitted() and current_user.has_role("marketing"):
        form.owner_id.data = current_user.id
    return form


@bp.route("", methods=["GET", "POST"])
def new():
    form = _form()
    status = 200
    if form.validate_on_submit():
        upload = form.file.data
        data = upload.read(MAX_BYTES + 1)
        try:
            imp = imports.create_import(current_user.id, upload.filename, data, source=form.source.data,
                                        campaign=form.campaign.data, owner_id=form.owner_id.data or None)
        except DomainError as exc:
            db.session.rollback()
            form.file.errors = [*form.file.errors, exc.message]
            status = exc.status_code
        else:
            db.session.commit()
            return redirect(url_for(".show", import_id=imp.id), code=303)
    elif form.is_submitted():
        status = 400
    recent = imports.recent_imports(current_user.id)
    return render_template("leads/import.html", form=form, recent=recent, max_rows=MAX_ROWS,
                           max_mb=MAX_BYTES // (1024 * 1024)), status


@bp.route("/<int:import_id>")
def show(import_id):
    imp = imports.get_import(import_id, current_user.id)
    if imp.status == "preview":
        try:
            data = imports.preview(imp.id)
        except DomainError as exc:  # cannot happen for a stored import, but never a 500
            flash(exc.message, "danger")
            return redirect(url_for(".new"))
        return render_template("leads/import_preview.html", imp=imp, data=data, form=StartForm())
    # a big import lists its first rows of each kind on the page; the CSV report has them all
    merged = imports.report_rows(imp, "merged")[:LIST_LIMIT]
    rejected = imports.report_rows(imp, "rejected")[:LIST_LIMIT]
    created = imports.report_rows(imp, "created")[:LIST_LIMIT]
    leads = imports.leads_by_id([e.get("lead_id") for e in merged + created]) if imp.status == "done" else {}
    return render_template("leads/import_status.html", imp=imp, status=imports.status_of(imp), merged=merged,
                           rejected=rejected, created=created, leads=leads, list_limit=LIST_LIMIT)


@bp.route("/<int:import_id>/start", methods=["POST"])
def start(import_id):
    form = StartForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        imports.start(import_id, current_user.id)
    except DomainError as exc:
        db.session.rollback()
        if exc.status_code == 404:
            abort(404)
        flash(exc.message, "warning")
    else:
        db.session.commit()
        flash(_("The import has started."), "success")
    return redirect(url_for(".show", import_id=import_id), code=303)


@bp.route("/<int:import_id>/status.json")
def status_json(import_id):
    imp = imports.get_import(import_id, current_user.id)
    data = imports.status_of(imp)
    data["status_label"] = str(STATUS_LABELS.get(imp.status, imp.status))
    resp = jsonify(data)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.route("/<int:import_id>/report.csv")
def report_csv(import_id):
    imp = imports.get_import(import_id, current_user.id)
    buf = io.StringIO()
    csv.writer(buf).writerows(imports.report_csv_rows(imp))
    return Response("\ufeff" + buf.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="lead-import-{imp.id}-report.csv"'})
