"""The maintenance sweep (rq cron, every minute): the notices that are due (helpdesk.maintenance.schedule)
fanned out to their recipients, at most ANNOUNCE_BATCH mails per notice per sweep (the rate limit;
the next sweep continues an unfinished fan-out).

Each mail is an AnnouncementDelivery claimed on a unique key (window, notice, revision, customer),
so a sweep run twice, or two sweeps at once, queue each notice once per recipient. The mails are
automatic (the per-address budget applies) and the send job checks the subscription again.
"""
from datetime import timedelta

from flask import current_app
from sqlalchemy import and_, or_, select

from ..extensions import db
from ..timeutil import utcnow
from . import schedule, services
from .models import MaintenanceWindow

# the progress field a finished fan-out sets
DONE_FIELD = {"announce": "announced_at", "reminder": "reminded_at", "completed": "completed_at",
              "cancelled": "cancel_notified_at"}


def due_windows(now):
    """Ids of the windows that may have a notice due: published and not finished, starting within
    the longest announcement period (index on status, starts_at), and cancelled ones whose
    cancellation notice has not gone out."""
    horizon = now + timedelta(days=schedule.MAX_ANNOUNCE_DAYS)
    W = MaintenanceWindow
    return db.session.execute(select(W.id).where(or_(
        and_(W.status == "scheduled", W.starts_at <= horizon, W.completed_at.is_(None)),
        and_(W.status == "cancelled", W.cancel_notified_at.is_(None)))).order_by(W.starts_at, W.id)).scalars().all()


def _told_anybody(w):
    return services.announce_started(w)


def _finish(w, kind, now):
    if kind in ("updated", "extended"):
        w.notified_revision = w.revision
    else:
        setattr(w, DONE_FIELD[kind], now)


def sweep_window(window_id, now, batch=None, stats=None):
    cfg = current_app.config
    batch = batch or cfg["ANNOUNCE_BATCH"]
    hours = cfg["MAINTENANCE_REMINDER_HOURS"]
    stats = stats if stats is not None else {}
    w = db.session.get(MaintenanceWindow, window_id)
    if w is None:
        return stats
    for kind in schedule.due(w, now, hours):
        if kind in ("completed", "cancelled") and not _told_anybody(w):
            _finish(w, kind, now)  # nobody was told: nothing to close
            if kind == "completed":
                w.notified_revision = w.revision
            continue
        if kind == "reminder" and schedule.reminder_too_late(w, now):
            _finish(w, kind, now)  # the sweep was down past the start: no reminder any more
            continue
        sent, seen = services.send_batch(w, kind, batch, now, hours)
        stats[kind] = stats.get(kind, 0) + sent
        if seen < batch:
            _finish(w, kind, now)
            if kind == "completed":
                w.notified_revision = w.revision
        db.session.commit()
        w = db.session.get(MaintenanceWindow, window_id)
    db.session.commit()
    return stats


def sweep(now=None, batch=None):
    """One pass over the due windows. Returns {notice: mails queued, "windows": n}."""
    now = now or utcnow()
    stats = {"windows": 0}
    for wid in due_windows(now):
        stats["windows"] += 1
        sweep_window(wid, now, batch, stats)
    db.session.commit()
    return stats


def cron_maintenance_sweep():
    """rq cron (queue "default", every minute): the maintenance notices."""
    from ..jobs import app_context

    with app_context():
        try:
            return sweep(utcnow())
        finally:
            db.session.remove()
