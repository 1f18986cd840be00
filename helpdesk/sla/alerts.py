"""What an SLA alert does when its job runs: who is told, how, and the policy's escalation on a breach.

- Recipient: the ticket's assignee, else the queue lead (inactive users are skipped).
- Mail (kinds sla_warning / sla_breach / sla_escalation, templates/mail/<lang>/) through
  helpdesk.mail.outbound.queue_mail: internal, automatic, so within the automatic-mail budget.
- An in-app notification (helpdesk.sla.notifications) for the same agent.
- On a breach, the policy's escalation: raise the priority one step (the clocks are recomputed), reassign
  to the queue lead, notify a manager; each step is an audit event "sla_escalation" (no acting user).
- A clock stopped as met or cancelled by the time the job runs (the customer was answered, the ticket
  merged) has nothing left to say: the alert is marked sent without any effect; a warning is only
  sent while its clock is still live.
"""
import logging

from flask_babel import force_locale, gettext

from ..auth.models import User
from ..extensions import db
from ..mail import outbound
from ..tickets.models import PRIORITIES, PRIORITY_RANK, Ticket
from . import notifications
from .calendar import format_local
from .models import SlaClock, SlaPolicy

log = logging.getLogger(__name__)

LIVE = ("running", "paused")
LOCAL_TZ = "Asia/Jakarta"


def _active(user_id):
    user = db.session.get(User, user_id) if user_id else None
    return user if user is not None and user.is_active else None


def recipient(ticket):
    """The assignee, else the queue lead; None when neither is an active user."""
    user = _active(ticket.assignee_id)
    if user is None and ticket.queue is not None:
        user = _active(ticket.queue.lead_id)
    return user


def _text(locale, message, **values):
    """A notification text in the agent's language (stored as such)."""
    with force_locale(locale):
        return gettext(message, **values)


def N_(message):
    """Marks a message for extraction; it is translated later, in the agent's language."""
    return message


TARGET_NAMES = {"first_response": N_("first response"), "next_response": N_("next response"),
                "resolution": N_("resolution")}


def _target_name(locale, target):
    return _text(locale, TARGET_NAMES[target]) if target in TARGET_NAMES else target


def _mail(kind, ticket, user, clock, now, extra=None):
    """One internal mail of `kind` about this clock to `user`, in their language."""
    locale = outbound.agent_locale(user)
    due = format_local(clock.due_at, LOCAL_TZ, locale) if clock.due_at else ""
    context = {"target": clock.target, "cycle": clock.cycle, "due_local": due,
               "priority": ticket.priority, **(extra or {})}
    subject = outbound.render_subject(kind, locale, ticket=ticket,
                                      subject=outbound.bare_subject(ticket.subject, ticket.number), **context)
    return outbound.queue_mail(kind, ticket=ticket, to=[user.email], subject=subject, locale=locale,
                               automatic=True, internal=True, user_id=user.id, context=context, now=now)


def _notify(kind, ticket, user, clock, now, message):
    locale = outbound.agent_locale(user)
    due = format_local(clock.due_at, LOCAL_TZ, locale) if clock.due_at else ""
    body = _text(locale, message, number=ticket.number, target=_target_name(locale, clock.target), due=due)
    notifications.notify([user.id], ticket.id, kind, body, now=now)


WARNING_TEXT = N_("Ticket #%(number)s: %(target)s is due %(due)s.")
BREACH_TEXT = N_("Ticket #%(number)s: %(target)s is overdue (due %(due)s).")
ESCALATION_TEXT = N_("Ticket #%(number)s was escalated: %(target)s is overdue (due %(due)s).")
REASSIGNED_TEXT = N_("Ticket #%(number)s was reassigned to you: %(target)s is overdue (due %(due)s).")


def deliver(alert, now):
    """Send one claimed alert (the caller marked it sent). Returns True when it had an effect."""
    clock = db.session.get(SlaClock, alert.clock_id)
    ticket = db.session.get(Ticket, alert.ticket_id)
    if clock is None or ticket is None:
        return False
    if clock.state in ("met", "cancelled") or (alert.kind == "warning" and clock.state not in LIVE):
        log.info("sla alert %s skipped: clock %s is %s", alert.id, clock.id, clock.state)
        return False
    kind = f"sla_{alert.kind}"
    user = recipient(ticket)
    if user is not None:
        _mail(kind, ticket, user, clock, now)
        _notify(kind, ticket, user, clock, now, WARNING_TEXT if alert.kind == "warning" else BREACH_TEXT)
    else:
        log.warning("sla alert %s for ticket %s: no assignee and no queue lead to tell", alert.id, ticket.number)
    if alert.kind == "breach":
        escalate(ticket, clock, now)
    return True


def escalate(ticket, clock, now):
    """The breached clock's policy escalation. Returns the steps taken ("priority", "lead", "manager")."""
    from ..tickets.services import audit

    policy = db.session.get(SlaPolicy, clock.policy_id) if clock.policy_id else None
    if policy is None:
        return []
    steps = []
    what = f"{clock.target} (cycle {clock.cycle}) breached"
    if policy.escalate_priority and ticket.priority in PRIORITY_RANK and ticket.priority != PRIORITIES[-1]:
        old = ticket.priority
        ticket.priority = PRIORITIES[PRIORITY_RANK[old] + 1]
        ticket.last_activity_at = now
        audit(ticket.id, None, "sla_escalation", old, ticket.priority, note=f"priority raised: {what}")
        from . import services as sla

        sla.on_priority(ticket, now)
        steps.append("priority")
    lead = _active(ticket.queue.lead_id) if ticket.queue is not None else None
    if policy.escalate_to_lead and lead is not None and ticket.assignee_id != lead.id:
        old = ticket.assignee.name if ticket.assignee else None
        ticket.assignee_id = lead.id
        ticket.last_activity_at = now
        audit(ticket.id, None, "sla_escalation", old, lead.name, note=f"reassigned to the queue lead: {what}")
        _notify("sla_escalation", ticket, lead, clock, now, REASSIGNED_TEXT)
        steps.append("lead")
    manager = _active(policy.escalate_notify_user_id)
    if manager is not None:
        _mail("sla_escalation", ticket, manager, clock, now, {"steps": list(steps)})
        _notify("sla_escalation", ticket, manager, clock, now, ESCALATION_TEXT)
        audit(ticket.id, None, "sla_escalation", None, manager.name, note=f"manager notified: {what}")
        steps.append("manager")
    db.session.flush()
    return steps
