"""Marketing's lead pages (marketing and admin only: 403 for the other agents).

- GET /leads: the pipeline: a count per stage and the leads, filtered by stage, owner, source and
  campaign, the most recently active first, 50 a page.
- /leads/new: manual entry (a known person is merged into their lead).
- /leads/<id>: the lead: details and edit form, the stage control, the activity log, activities,
  follow-up tasks (due time typed in Asia/Jakarta, stored UTC), conversion to a customer.
Views are thin: helpdesk.leads.services holds the rules.
"""
import ast
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import func, select

from ..auth.models import User, UserRole
from ..customers.models import Customer
from ..errors import DomainError, Forbidden, NotFound
from ..extensions import db
from . import services
from .forms import (ACTIVITY_LABELS, CHANNEL_LABELS, FIELD_LABELS, LINE_LABELS, LOG_LABELS, SOURCE_LABELS,
                    STAGE_LABELS, ActivityForm, ButtonForm, LeadForm, StageForm, TaskForm)
from .models import LEAD_SOURCES, LEAD_STAGES, Lead, LeadTask

bp = Blueprint("leads", __name__, url_prefix="/leads")

PAGE_SIZE = 50


def may_manage(user):
    return bool(getattr(user, "is_authenticated", False) and hasattr(user, "has_role")
                and any(user.has_role(r) for r in services.MANAGER_ROLES))


@bp.before_request
@login_required
def _marketing_only():
    if not may_manage(current_user):
        raise Forbidden(_("Only marketing can manage leads."))


@bp.app_context_processor
def _nav():
    return {"leads_visible": lambda: may_manage(current_user),
            "lead_labels": {"source": SOURCE_LABELS, "stage": STAGE_LABELS, "line": LINE_LABELS}}


@bp.context_processor
def _labels():
    return {"SOURCE_LABELS": SOURCE_LABELS, "STAGE_LABELS": STAGE_LABELS, "LINE_LABELS": LINE_LABELS,
            "LOG_LABELS": LOG_LABELS, "ACTIVITY_LABELS": ACTIVITY_LABELS, "LEAD_CHANNEL_LABELS": CHANNEL_LABELS,
            "FIELD_LABELS": FIELD_LABELS, "LEAD_STAGES": LEAD_STAGES}


# ---------------------------------------------------------------- helpers

def marketing_agents():
    """Active marketing agents (who can own leads and tasks), by name."""
    return db.session.execute(select(User).join(UserRole, UserRole.user_id == User.id)
                              .where(UserRole.role == "marketing", User.active.is_(True))
                              .order_by(User.name, User.id)).scalars().all()


def _owner_choices(agents):
    return [("", _("Nobody"))] + [(str(u.id), u.name) for u in agents]


def _int_or_none(value):
    value = (value or "").strip()
    return int(value) if value.isdigit() else None


def bound(endpoint, **ids):
    """The posted form data when this request posted to `endpoint` (for these ids), else None."""
    if request.method != "POST" or request.endpoint != endpoint:
        return None
    if any(request.view_args.get(k) != v for k, v in ids.items()):
        return None
    return request.form


def form_error(form):
    for field in form:
        if field.errors:
            return DomainError(f"{field.label.text}: {field.errors[0]}", field=field.name)
    return DomainError(_("Check the form."))


def jakarta_to_utc(day, at):
    """A date and a wall-clock time in the helpdesk's zone (Asia/Jakarta) as naive UTC."""
    tz = ZoneInfo(current_app.config.get("HELPDESK_TIMEZONE") or "Asia/Jakarta")
    return datetime.combine(day, at, tzinfo=tz).astimezone(timezone.utc).replace(tzinfo=None)


def _lead_fields(form):
    return {"name": form.name.data, "company": form.company.data, "email": form.email.data,
            "phone": form.phone.data, "source": form.source.data, "campaign": form.campaign.data,
            "product_lines": form.product_lines.data or [], "owner_id": _int_or_none(form.owner_id.data),
            "notes": form.notes.data}


# ---------------------------------------------------------------- the pipeline

def _filters():
    args = request.args
    f = {"stage": args.get("stage") if args.get("stage") in LEAD_STAGES else "",
         "owner": args.get("owner") if (args.get("owner") or "").isdigit() or args.get("owner") == "none" else "",
         "source": args.get("source") if args.get("source") in LEAD_SOURCES else "",
         "campaign": (args.get("campaign") or "").strip()[:80]}
    return f


def _where(f, with_stage=True):
    conditions = []
    if with_stage and f["stage"]:
        conditions.append(Lead.stage == f["stage"])
    if f["owner"] == "none":
        conditions.append(Lead.owner_id.is_(None))
    elif f["owner"]:
        conditions.append(Lead.owner_id == int(f["owner"]))
    if f["source"]:
        conditions.append(Lead.source == f["source"])
    if f["campaign"]:
        conditions.append(func.lower(Lead.campaign) == f["campaign"].lower())
    return conditions


@bp.route("")
def index():
    f = _filters()
    counts = dict(db.session.execute(select(Lead.stage, func.count(Lead.id)).where(*_where(f, with_stage=False))
                                     .group_by(Lead.stage)).all())
    page = max(_int_or_none(request.args.get("page")) or 1, 1)
    rows = db.session.execute(select(Lead, User.name).outerjoin(User, User.id == Lead.owner_id).where(*_where(f))
                              .order_by(Lead.last_activity_at.desc(), Lead.id.desc())
                              .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)).all()
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    ids = [lead.id for lead, _owner in rows]
    next_due = dict(db.session.execute(select(LeadTask.lead_id, func.min(LeadTask.due_at))
                                       .where(LeadTask.lead_id.in_(ids), LeadTask.done_at.is_(None))
                                       .group_by(LeadTask.lead_id)).all()) if ids else {}
    campaigns = db.session.execute(select(Lead.campaign).where(Lead.campaign.is_not(None)).distinct()
                                   .order_by(Lead.campaign).limit(200)).scalars().all()
    return render_template("leads/index.html", rows=rows, counts=counts, total=sum(counts.values()), filters=f,
                           next_due=next_due, page=page, more=more, agents=marketing_agents(), campaigns=campaigns)


# ---------------------------------------------------------------- manual entry

@bp.route("/new", methods=["GET", "POST"])
def new():
    form = LeadForm() if request.method == "POST" else LeadForm(formdata=None)
    form.owner_id.choices = _owner_choices(marketing_agents())
    if request.method == "GET":
        if current_user.has_role("marketing"):
            form.owner_id.data = str(current_user.id)
        return render_template("leads/new.html", form=form)
    try:
        if not form.validate():
            raise form_error(form)
        lead, created = services.capture(**_lead_fields(form), channel="manual", actor_id=current_user.id)
    except DomainError as exc:
        db.session.rollback()
        field = exc.details.get("field")
        if field in form and not form[field].errors:
            form[field].errors = list(form[field].errors) + [exc.message]
        flash(exc.message, "error")
        return render_template("leads/new.html", form=form), exc.status_code
    db.session.commit()
    flash(_("Lead saved.") if created else _("Already known: merged into this lead"), "success" if created else "info")
    return redirect(url_for("leads.show", lead_id=lead.id))


# ---------------------------------------------------------------- the lead page

def _lead_or_404(lead_id):
    return services.get_lead(lead_id)  # NotFound: the 404 page


def _edit_form(lead, agents):
    posted = bound("leads.edit", lead_id=lead.id)
    if posted is None:
        form = LeadForm(formdata=None, obj=lead)
        form.owner_id.data = str(lead.owner_id or "")
        form.product_lines.data = list(lead.product_lines or [])
    else:
        form = LeadForm(formdata=posted)
    form.owner_id.choices = _owner_choices(agents)
    if posted is not None:
        form.validate()
    return form


def _form(cls, endpoint, lead, agents=None, **data):
    posted = bound(endpoint, lead_id=lead.id)
    form = cls(formdata=None, **data) if posted is None else cls(formdata=posted)
    if hasattr(form, "owner_id"):
        form.owner_id.choices = _owner_choices(agents or [])
    if posted is not None:
        form.validate()
    return form


def _as_lines(value):
    """The product lines of an "edited" entry: the service stores each side as the list's text."""
    if isinstance(value, list) or value is None:
        return value
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value
    return [str(x) for x in parsed] if isinstance(parsed, (list, tuple)) else value


def _log_view(entries):
    """The log's entries with what the template needs parsed (task due times as datetimes)."""
    out = []
    for e in entries:
        data = e.data or {}
        due = None
        if e.kind == "task" and data.get("due_at"):
            try:
                due = datetime.fromisoformat(data["due_at"])
            except ValueError:
                due = None
        if e.kind == "edited" and "product_lines" in (data.get("changes") or {}):
            data = dict(data, changes=dict(data["changes"], product_lines=[
                _as_lines(v) for v in data["changes"]["product_lines"]]))
        out.append({"entry": e, "data": data, "due": due})
    return out


def _render_show(lead, status=200, error_field=None, error=None):
    agents = marketing_agents()
    names = {u.id: u.name for u in agents}
    entries = services.activity(lead.id)
    tasks = services.tasks_of(lead.id)
    ids = ({e.actor_user_id for e in entries} | {t.owner_id for t in tasks} | {lead.owner_id}) - set(names) - {None}
    if ids:
        names.update(dict(db.session.execute(select(User.id, User.name).where(User.id.in_(ids))).all()))
    customer = db.session.get(Customer, lead.customer_id) if lead.customer_id else None
    forms = {"edit": _edit_form(lead, agents),
             "stage": _form(StageForm, "leads.stage", lead, stage=lead.stage),
             "activity": _form(ActivityForm, "leads.add_activity", lead),
             "task": _form(TaskForm, "leads.add_task", lead, agents)}
    if error and error_field:
        form = forms.get(_FORM_OF.get(request.endpoint))
        if form is not None and error_field in form and not form[error_field].errors:
            form[error_field].errors = [error]
    return render_template("leads/show.html", lead=lead, customer=customer, names=names, log=_log_view(entries),
                           tasks=tasks, forms=forms, button=ButtonForm(formdata=None)), status


_FORM_OF = {"leads.edit": "edit", "leads.stage": "stage", "leads.add_activity": "activity", "leads.add_task": "task"}


@bp.route("/<int:lead_id>")
def show(lead_id):
    return _render_show(_lead_or_404(lead_id))


def _act(lead, form, change, success):
    """Validate `form`, apply `change()` through a service, commit and go back to the lead; a refusal
    shows the page again with the form as typed and the error."""
    try:
        if form is not None and not form.validate_on_submit():
            raise form_error(form)
        change()
    except DomainError as exc:
        db.session.rollback()
        if isinstance(exc, (NotFound, Forbidden)):
            raise
        flash(exc.message, "error")
        return _render_show(db.session.get(Lead, lead.id), exc.status_code, exc.details.get("field"), exc.message)
    db.session.commit()
    flash(success, "success")
    return redirect(url_for("leads.show", lead_id=lead.id))


@bp.route("/<int:lead_id>/edit", methods=["POST"])
def edit(lead_id):
    lead = _lead_or_404(lead_id)
    form = LeadForm()
    form.owner_id.choices = _owner_choices(marketing_agents())
    return _act(lead, form, lambda: services.update(lead.id, current_user.id, **_lead_fields(form)), _("Saved."))


@bp.route("/<int:lead_id>/stage", methods=["POST"])
def stage(lead_id):
    lead = _lead_or_404(lead_id)
    form = StageForm()
    return _act(lead, form, lambda: services.change_stage(lead.id, current_user.id, form.stage.data, form.reason.data),
                _("Stage changed."))


@bp.route("/<int:lead_id>/activities", methods=["POST"])
def add_activity(lead_id):
    lead = _lead_or_404(lead_id)
    form = ActivityForm()
    return _act(lead, form, lambda: services.add_activity(lead.id, current_user.id, form.kind.data, form.text.data),
                _("Added to the log."))


@bp.route("/<int:lead_id>/tasks", methods=["POST"])
def add_task(lead_id):
    lead = _lead_or_404(lead_id)
    form = TaskForm()
    form.owner_id.choices = _owner_choices(marketing_agents())

    def change():
        due = jakarta_to_utc(form.due_date.data, form.due_time.data)
        services.add_task(lead.id, current_user.id, form.title.data, due, _int_or_none(form.owner_id.data))

    return _act(lead, form, change, _("Task added."))


@bp.route("/tasks/<int:task_id>/done", methods=["POST"])
def task_done(task_id):
    task = db.session.get(LeadTask, task_id)
    if task is None:
        raise NotFound(_("Task not found."))
    lead = _lead_or_404(task.lead_id)
    return _act(lead, ButtonForm(), lambda: services.complete_task(task.id, current_user.id), _("Task done."))


@bp.route("/<int:lead_id>/convert", methods=["POST"])
def convert(lead_id):
    lead = _lead_or_404(lead_id)
    return _act(lead, ButtonForm(), lambda: services.convert(lead.id, current_user.id),
                _("The lead is a customer now."))
