"""Follow-up reminders (queue "default"): `rq cron` runs `cron_lead_reminders` every minute.

The sweep reads the due, undone, unreminded tasks over the partial index ix_lead_tasks_due, claims
them with one conditional UPDATE (reminded_at IS NULL ... RETURNING id: two sweeps at once claim
each task once) and, in the same transaction, records the owner's reminder: a bell notification
and a mail (kind lead_reminder, through the outbox and the automatic-mail budget). One commit holds
the claim and its effects, so a reminder is sent exactly once; a crash before it leaves the task
for the next sweep.
"""
from sqlalchemy import update

from ..auth.models import User
from ..extensions import db
from ..timeutil import utcnow
from . import services
from .models import Lead, LeadTask

BATCH = 500


def sweep(now=None, batch=BATCH):
    """Remind the owners of the due follow-ups. Returns {"reminded": n, "batches": k}."""
    from ..mail import outbound
    from ..sla import notifications

    now = now or utcnow()
    stats = {"reminded": 0, "batches": 0}
    while True:
        ids = services.due_tasks(now, batch)
        if not ids:
            break
        stats["batches"] += 1
        claimed = db.session.execute(
            update(LeadTask).where(LeadTask.id.in_(ids), LeadTask.reminded_at.is_(None), LeadTask.done_at.is_(None))
            .values(reminded_at=now).returning(LeadTask.id).execution_options(synchronize_session=False)
        ).scalars().all()
        for task_id in claimed:
            task = db.session.get(LeadTask, task_id)
            lead = db.session.get(Lead, task.lead_id)
            owner = db.session.get(User, task.owner_id) if task.owner_id else None
            if owner is None or not owner.active:
                continue
            notifications.notify([owner.id], None, "lead_task", f"{task.title} · {lead.name}"[:300], now=now,
                                 lead_id=lead.id)
            locale = outbound.agent_locale(owner)
            subject = outbound.render_subject("lead_reminder", locale, task=task, lead=lead)
            outbound.queue_mail("lead_reminder", ticket=None, to=[owner.email], subject=subject, locale=locale,
                                automatic=True, internal=True, user_id=owner.id,
                                context={"task_id": task.id, "lead_id": lead.id}, now=now)
            stats["reminded"] += 1
        db.session.commit()
        if len(ids) < batch:
            break
    return stats


def cron_lead_reminders():
    """rq cron (queue "default", every minute): the follow-up reminder sweep."""
    from ..jobs import app_context

    with app_context():
        try:
            return sweep(utcnow())
        finally:
            db.session.remove()
