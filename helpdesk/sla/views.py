"""SLA on screen: the queue list's badges, the ticket page's clocks and history, and the bell.

Everything here reads what the services stored (the ticket's next_sla_due, the clock runs); the
only arithmetic is business time from now to a stored deadline, with the policy's calendar.
A list page loads the policies of its tickets in one statement and each calendar once.
"""
from dataclasses import dataclass
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from ..extensions import db
from ..timeutil import utcnow
from . import calendar as bcal
from . import notifications
from .models import SlaPolicy
from .services import calendar_for, history

bp = Blueprint("notifications", __name__)

WARN_SECONDS = 3600  # a running deadline less than one business hour away is a warning
TARGET_LABELS = {"first_response": _l("First response"), "next_response": _l("Next response"),
                 "resolution": _l("Resolution")}
STATE_LABELS = {"running": _l("running"), "paused": _l("paused"), "met": _l("met"), "breached": _l("breached"),
                "cancelled": _l("cancelled")}
KIND_LABELS = {"sla_warning": _l("SLA warning"), "sla_breach": _l("SLA breached"),
               "sla_escalation": _l("SLA escalation"), "csat_bad": _l("Bad rating"),
               "lead_task": _l("Lead follow-up due"), "payment_proof": _l("Proof of transfer")}


def now():
    """The time the pages measure against (tests travel with time-machine)."""
    return utcnow()


def duration(seconds):
    """Business time as '2h 15m' (English) / '2j 15m' (Indonesian), whole minutes."""
    minutes = max(int(seconds), 0) // 60
    hours, minutes = divmod(minutes, 60)
    if hours:
        return _("%(h)sh %(m)sm", h=hours, m=minutes)
    return _("%(m)sm", m=minutes)


def left_or_overdue(seconds):
    """'2h 15m left' for a deadline ahead, 'overdue 40m' for one passed (seconds < 0)."""
    if seconds >= 0:
        return _("%(time)s left", time=duration(seconds))
    return _("overdue %(time)s", time=duration(-seconds))


def business_seconds(cal, start, end):
    """Signed business seconds from start to end (negative when end is before start)."""
    if end >= start:
        return int(bcal.elapsed(cal, start, end).total_seconds())
    return -int(bcal.elapsed(cal, end, start).total_seconds())


# ---------------------------------------------------------------- queue list badges

@dataclass
class Badge:
    state: str  # ok / warning / overdue
    text: str
    due_at: object


def _policies(policy_ids):
    """{policy id: (policy, Calendar)} in one statement (the calendars come with it, cached per version)."""
    if not policy_ids:
        return {}
    rows = db.session.execute(select(SlaPolicy).options(joinedload(SlaPolicy.calendar))
                              .where(SlaPolicy.id.in_(sorted(policy_ids)))).scalars().all()
    return {p.id: (p, calendar_for(p.calendar)) for p in rows}


def list_badges(tickets, at=None):
    """{ticket id: Badge} for the tickets of a list page with a running SLA clock (next_sla_due set).

    Paused or stopped clocks have no deadline on the ticket, and no badge."""
    at = at or now()
    due = [t for t in tickets if t.next_sla_due is not None and t.sla_policy_id]
    policies = _policies({t.sla_policy_id for t in due})
    badges = {}
    for t in due:
        if t.sla_policy_id not in policies:
            continue
        policy, cal = policies[t.sla_policy_id]
        left = business_seconds(cal, at, t.next_sla_due)
        if left < 0 or (left == 0 and at >= t.next_sla_due):
            state = "overdue"
        elif left < max(WARN_SECONDS, (policy.warn_minutes or 0) * 60):
            state = "warning"
        else:
            state = "ok"
        if state == "overdue" and left == 0:  # passed, out of hours: no business time late yet
            text = _("overdue")
        else:
            text = left_or_overdue(left)
        badges[t.id] = Badge(state, text, t.next_sla_due)
    return badges


# ---------------------------------------------------------------- the ticket page

@dataclass
class ClockView:
    target: str
    label: str
    cycle: int
    state: str
    state_label: str
    started_at: object
    due_at: object  # None while paused
    stopped_at: object
    target_minutes: int
    paused_seconds: int
    remaining: int | None  # business seconds, negative = overdue / breached by
    remaining_text: str
    overdue: bool


def _view(clock, cal, at):
    remaining = None
    if clock.state == "running" and clock.due_at is not None:
        remaining = business_seconds(cal, at, clock.due_at)
    elif clock.state == "paused" and clock.paused_at is not None:
        used = int(bcal.elapsed(cal, clock.started_at, clock.paused_at).total_seconds()) - clock.paused_seconds
        remaining = clock.target_minutes * 60 - used
    elif clock.state in ("met", "breached") and clock.margin_seconds is not None:
        remaining = clock.margin_seconds
    if remaining is None:
        text = "—"
    elif clock.state == "met":
        text = _("met %(time)s early", time=duration(remaining))
    elif clock.state == "breached":
        text = _("breached by %(time)s", time=duration(-remaining))
    elif clock.state == "paused":
        text = _("%(time)s left when resumed", time=duration(remaining))
    else:
        text = left_or_overdue(remaining)
    return ClockView(
        target=clock.target, label=str(TARGET_LABELS.get(clock.target, clock.target)), cycle=clock.cycle,
        state=clock.state, state_label=str(STATE_LABELS.get(clock.state, clock.state)),
        started_at=clock.started_at, due_at=None if clock.state == "paused" else clock.due_at,  # moves on resume
        stopped_at=clock.stopped_at,
        target_minutes=clock.target_minutes, paused_seconds=clock.paused_seconds or 0,
        remaining=remaining, remaining_text=text,
        overdue=remaining is not None and remaining < 0 and clock.state in ("running", "breached"))


def ticket_sla(ticket, at=None):
    """The ticket page's SLA panel: its policy, the latest run of each target, and every run.

    None when the ticket has no policy (an SLA-less install, or a ticket from before SLAs)."""
    if not ticket.sla_policy_id:
        return None
    policy = db.session.execute(select(SlaPolicy).options(joinedload(SlaPolicy.calendar))
                                .where(SlaPolicy.id == ticket.sla_policy_id)).scalar_one_or_none()
    if policy is None:
        return None
    at = at or now()
    cal = calendar_for(policy.calendar)
    runs = [_view(c, cal, at) for c in history(ticket.id)]
    latest = {}
    for run in runs:
        latest[run.target] = run
    current = [latest[t] for t in TARGET_LABELS if t in latest]
    return {"policy": policy, "current": current, "history": runs}


# ---------------------------------------------------------------- the bell

class MarkReadForm(FlaskForm):
    """Only the CSRF token: 'mark all read'."""


def _agent():
    """The logged-in agent (a User), or None on the portal, for customers and anonymous visitors."""
    from ..auth.models import User

    user = current_user._get_current_object() if current_user else None
    return user if isinstance(user, User) and user.is_authenticated else None


def bell_count():
    """Unread notifications of the logged-in agent, counted once per request (None: no bell)."""
    # On the request, not on `g`: an app context (and its `g`) can outlive a request.
    if not hasattr(request, "helpdesk_bell_count"):
        user = _agent()
        request.helpdesk_bell_count = notifications.unread_count(user.id) if user is not None else None
    return request.helpdesk_bell_count


def install(app):
    """The bell's count for base.html, computed only when a page renders the top bar."""
    app.jinja_env.globals.update(bell_count=bell_count, sla_duration=duration)


@bp.before_request
@login_required
def _require_login():
    """Agents only (a customer is anonymous on agent pages)."""


@bp.route("/notifications")
def index():
    """The newest notifications of the logged-in agent, with links to their tickets."""
    from ..tickets.models import Ticket

    items = notifications.recent(current_user.id, limit=50)
    ids = {n.ticket_id for n in items if n.ticket_id}
    numbers = dict(db.session.execute(select(Ticket.id, Ticket.number).where(Ticket.id.in_(ids))).all()) \
        if ids else {}
    unread = sum(1 for n in items if n.read_at is None)
    return render_template("sla/notifications.html", items=items, numbers=numbers, unread=unread,
                           kinds=KIND_LABELS, form=MarkReadForm())


@bp.route("/notifications/read", methods=["POST"])
def mark_read():
    """Mark all of the agent's notifications read."""
    form = MarkReadForm()
    if not form.validate_on_submit():
        flash(_("The form expired. Please try again."), "error")
        return redirect(url_for("notifications.index"))
    n = notifications.mark_read(current_user.id, now=now())
    db.session.commit()
    flash(_("%(n)s notification(s) marked read.", n=n), "success")
    return redirect(url_for("notifications.index"))
