"""Admin pages of the SLAs (on the admin blueprint, so admin-only): policies, business calendars with
their company days, and the rules that choose a new ticket's policy.

Thin views: read the form, call helpdesk.sla.admin_services with the acting admin's id and the time,
commit, flash, redirect. A rejected form is shown again (400) with what was typed and the errors.
"""
from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from sqlalchemy import select

from ..admin.forms import ActionForm
from ..admin.views import bp
from ..auth.models import User
from ..errors import DomainError, NotFound
from ..extensions import db
from ..tickets.models import CHANNELS, PRIORITIES, Queue
from ..timeutil import to_local, utcnow
from ..web import CHANNEL_LABELS, STATUS_LABELS
from . import admin_services as svc
from .forms import TARGET_LABELS, WEEKDAY_LABELS, CalendarDayForm, CalendarForm, PolicyForm, RuleForm
from .models import TARGETS

SLA_ENDPOINTS = ("admin.sla_policies", "admin.sla_policy_new", "admin.sla_policy_edit", "admin.sla_calendars",
                 "admin.sla_calendar_new", "admin.sla_calendar_edit", "admin.sla_calendar_day_add", "admin.sla_rules")


@bp.context_processor
def _sla_nav():
    return {"SLA_ENDPOINTS": SLA_ENDPOINTS}


def _attempt(form, call, aliases=None):
    """Run a service call; on a domain error roll back and show each message next to its field
    (errors={field: message} or field=...; `aliases` renames a service's field to the form's), else as
    a flash. False when it failed."""
    try:
        call()
    except DomainError as exc:
        db.session.rollback()
        errors = dict(exc.details.get("errors") or {})
        if not errors:
            errors[exc.details.get("field")] = exc.message
        for field, message in errors.items():
            field = (aliases or {}).get(field, field)
            if field and field in form:
                form[field].errors = list(form[field].errors) + [message]
            else:
                flash(message, "error")
        return False
    return True


_FAILED = object()


def _submitted(form, call, aliases=None):
    """Validate the form and run the service call; committed and its result when both succeed, else _FAILED."""
    if not form.validate_on_submit():
        return _FAILED
    out = []
    if not _attempt(form, lambda: out.append(call()), aliases):
        return _FAILED
    db.session.commit()
    return out[0]


def _action(call, message, endpoint, **values):
    """A button (CSRF token only): run the service call, flash `message(result)` and go back to the page."""
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    result = _submitted(form, call)
    if result is not _FAILED and message:
        flash(message(result), "success")
    return redirect(url_for(endpoint, **values), 303)


def _found(call, *args):
    try:
        return call(*args)
    except NotFound:
        abort(404)


def _hour_unit():
    return "h" if str(get_locale() or "id").startswith("en") else "j"


def _status(form):
    return 400 if form.is_submitted() else 200


# ---------------------------------------------------------------- policies

@bp.route("/sla/policies")
def sla_policies():
    """Every policy with its calendar and targets; the default one first."""
    return render_template("admin/sla_policies.html", policies=svc.list_policies(), PRIORITIES=PRIORITIES,
                           TARGETS=TARGETS, TARGET_LABELS=TARGET_LABELS, fmt=svc.format_duration,
                           hour_unit=_hour_unit())


def _policy_form(policy=None):
    form = PolicyForm(obj=policy)  # a POST's data wins over the stored values
    form.calendar_id.choices = [(c.id, c.name) for c in svc.list_calendars()]
    form.pause_statuses.choices = [(s, STATUS_LABELS[s]) for s in svc.PAUSABLE]
    agents = db.session.execute(select(User).where(User.active.is_(True)).order_by(User.name)).scalars().all()
    form.escalate_notify_user_id.choices = [(None, _("Nobody"))] + [(u.id, f"{u.name} <{u.email}>") for u in agents]
    if not form.is_submitted():
        if policy is not None:
            for p in PRIORITIES:
                for t in TARGETS:
                    form.target_field(p, t).data = svc.format_duration(policy.target(p, t), _hour_unit())
        else:
            form.pause_statuses.data = ["pending_customer"]
            form.warn_percent.data = 75
            form.is_default.data = svc.default_policy() is None
    return form


def _policy_data(form):
    return {"name": form.name.data, "calendar_id": form.calendar_id.data,
            "targets": {p: {t: form.target_field(p, t).data for t in TARGETS} for p in PRIORITIES},
            "pause_statuses": form.pause_statuses.data or [], "warn_percent": form.warn_percent.data,
            "warn_minutes": form.warn_minutes.data, "escalate_priority": form.escalate_priority.data,
            "escalate_to_lead": form.escalate_to_lead.data,
            "escalate_notify_user_id": form.escalate_notify_user_id.data,
            "reopen_new_cycle": form.reopen_new_cycle.data, "is_default": form.is_default.data,
            "recompute": form.recompute.data}


def _render_policy(form, policy):
    return render_template("admin/sla_policy_form.html", form=form, policy=policy, PRIORITIES=PRIORITIES,
                           TARGETS=TARGETS, TARGET_LABELS=TARGET_LABELS), _status(form)


def _save_policy(policy_id):
    policy = _found(svc.get_policy, policy_id) if policy_id else None
    form = _policy_form(policy)
    saved = _submitted(form, lambda: svc.save_policy(policy_id, current_user.id, utcnow(), **_policy_data(form)))
    if saved is not _FAILED:
        policy, recomputed = saved
        flash(_("SLA policy %(name)s saved. It applies to new tickets.", name=policy.name), "success")
        if recomputed is not None:
            flash(ngettext("%(num)d open ticket recomputed.", "%(num)d open tickets recomputed.", recomputed),
                  "success")
        return redirect(url_for("admin.sla_policies"), 303)
    return _render_policy(form, _found(svc.get_policy, policy_id) if policy_id else None)


@bp.route("/sla/policies/new", methods=["GET", "POST"])
def sla_policy_new():
    return _save_policy(None)


@bp.route("/sla/policies/<int:policy_id>", methods=["GET", "POST"])
def sla_policy_edit(policy_id):
    return _save_policy(policy_id)


# ---------------------------------------------------------------- calendars

@bp.route("/sla/calendars")
def sla_calendars():
    return render_template("admin/sla_calendars.html", calendars=svc.list_calendars(), WEEKDAY_LABELS=WEEKDAY_LABELS,
                           fmt=svc.format_intervals)


def _calendar_form(cal=None):
    form = CalendarForm(obj=cal)
    zones = list(svc.COMMON_ZONES)
    current = form.tz.data if form.is_submitted() else (cal.tz if cal else "Asia/Jakarta")
    if current and current not in zones:
        zones.insert(0, current)  # a zone typed or stored outside the common list stays visible
    form.tz.choices = [(z, z) for z in zones]
    if not form.is_submitted():
        form.tz.data = current
        if cal is not None:
            form.country.data = cal.country or ""
            for wd in svc.WEEKDAYS:
                form[f"hours_{wd}"].data = svc.format_intervals((cal.hours or {}).get(str(wd)))
        else:
            for wd in svc.WEEKDAYS:
                form[f"hours_{wd}"].data = svc.format_intervals(svc.sla.DEFAULT_HOURS.get(str(wd)))
    return form


def _render_calendar(form, cal, day_form=None, status=None):
    holidays = []
    if cal is not None:
        today = to_local(utcnow(), cal.tz).date()
        holidays = svc.upcoming_holidays(cal, today, "en_US" if _hour_unit() == "h" else "id")
    return render_template("admin/sla_calendar_form.html", form=form, cal=cal, day_form=day_form or CalendarDayForm(
        formdata=None, prefix="day"), holidays=holidays, action_form=ActionForm(), WEEKDAY_LABELS=WEEKDAY_LABELS,
        fmt=svc.format_intervals), status or _status(form)


def _save_calendar(calendar_id):
    cal = _found(svc.get_calendar, calendar_id) if calendar_id else None
    form = _calendar_form(cal)
    saved = _submitted(form, lambda: svc.save_calendar(
        calendar_id, current_user.id, utcnow(), name=form.name.data, tz=form.tz.data,
        always_open=form.always_open.data, country=form.country.data,
        hours={wd: form[f"hours_{wd}"].data for wd in svc.WEEKDAYS}))
    if saved is not _FAILED:
        flash(_("Calendar %(name)s saved.", name=saved.name), "success")
        return redirect(url_for("admin.sla_calendar_edit", calendar_id=saved.id), 303)
    return _render_calendar(form, _found(svc.get_calendar, calendar_id) if calendar_id else None)


@bp.route("/sla/calendars/new", methods=["GET", "POST"])
def sla_calendar_new():
    return _save_calendar(None)


@bp.route("/sla/calendars/<int:calendar_id>", methods=["GET", "POST"])
def sla_calendar_edit(calendar_id):
    return _save_calendar(calendar_id)


@bp.route("/sla/calendars/<int:calendar_id>/days", methods=["POST"])
def sla_calendar_day_add(calendar_id):
    """A company day off or a day with special hours."""
    _found(svc.get_calendar, calendar_id)
    day_form = CalendarDayForm(prefix="day")
    if _submitted(day_form, lambda: svc.add_day(
            calendar_id, current_user.id, utcnow(), day=day_form.day.data, name=day_form.name.data,
            closed=day_form.closed.data, hours=day_form.hours.data)) is not _FAILED:
        flash(_("%(day)s added to the calendar.", day=day_form.day.data.isoformat()), "success")
        return redirect(url_for("admin.sla_calendar_edit", calendar_id=calendar_id, _anchor="days"), 303)
    cal = _found(svc.get_calendar, calendar_id)
    return _render_calendar(_calendar_form_for_display(cal), cal, day_form, 400)


def _calendar_form_for_display(cal):
    """The calendar's own form, filled from the database (the POST was the day form's)."""
    form = CalendarForm(formdata=None, obj=cal)
    form.tz.choices = [(z, z) for z in ([cal.tz] if cal.tz not in svc.COMMON_ZONES else []) + list(svc.COMMON_ZONES)]
    form.country.data = cal.country or ""
    for wd in svc.WEEKDAYS:
        form[f"hours_{wd}"].data = svc.format_intervals((cal.hours or {}).get(str(wd)))
    return form


@bp.route("/sla/calendars/<int:calendar_id>/days/<int:day_id>/delete", methods=["POST"])
def sla_calendar_day_delete(calendar_id, day_id):
    _found(svc.get_calendar, calendar_id)
    return _action(lambda: svc.remove_day(calendar_id, day_id, current_user.id, utcnow()),
                   lambda row: _("%(day)s removed from the calendar.", day=row.day.isoformat()),
                   "admin.sla_calendar_edit", calendar_id=calendar_id, _anchor="days")


@bp.route("/sla/calendars/<int:calendar_id>/recompute", methods=["POST"])
def sla_calendar_recompute(calendar_id):
    """After changing hours or days: the open tickets on this calendar's policies get new deadlines."""
    _found(svc.get_calendar, calendar_id)
    return _action(lambda: svc.recompute_calendar(calendar_id, current_user.id, utcnow()),
                   lambda n: ngettext("%(num)d open ticket recomputed.", "%(num)d open tickets recomputed.", n),
                   "admin.sla_calendar_edit", calendar_id=calendar_id)


# ---------------------------------------------------------------- rules

def _rule_form():
    form = RuleForm()
    queues = db.session.execute(select(Queue).order_by(Queue.name)).scalars().all()
    form.queue.choices = [(str(q.id), q.name) for q in queues]
    form.channel.choices = [(c, CHANNEL_LABELS[c]) for c in CHANNELS]
    form.policy_id.choices = [(p.id, p.name) for p in svc.list_policies()]
    return form, {str(q.id): q.name for q in queues}


@bp.route("/sla/rules", methods=["GET", "POST"])
def sla_rules():
    """The ordered rules (the first match decides a new ticket's policy), and a form to add one."""
    form, queue_names = _rule_form()
    value_field = form.kind.data if form.kind.data in ("tier", "queue", "channel") else "tier"
    if _submitted(form, lambda: svc.add_rule(current_user.id, kind=form.kind.data, value=form[value_field].data,
                                             policy_id=form.policy_id.data), {"value": value_field}) is not _FAILED:
        flash(_("Rule added."), "success")
        return redirect(url_for("admin.sla_rules"), 303)
    return render_template("admin/sla_rules.html", form=form, rules=svc.list_rules(), default=svc.default_policy(),
                           queue_names=queue_names, action_form=ActionForm()), _status(form)


@bp.route("/sla/rules/<int:rule_id>/delete", methods=["POST"])
def sla_rule_delete(rule_id):
    return _action(lambda: svc.delete_rule(rule_id, current_user.id), lambda _rule: _("Rule deleted."),
                   "admin.sla_rules")


@bp.route("/sla/rules/<int:rule_id>/move", methods=["POST"])
def sla_rule_move(rule_id):
    """Move a rule one place up or down (the button's `direction`)."""
    return _action(lambda: svc.move_rule(rule_id, request.form.get("direction"), current_user.id), None,
                   "admin.sla_rules")
