"""In-app notifications for agents (the bell): SLA warnings, breaches, escalations, bad CSAT answers."""
from sqlalchemy import func, select, update

from ..extensions import db
from ..timeutil import utcnow
from .models import Notification


def notify(user_ids, ticket_id, kind, body, now=None, lead_id=None):
    """One notification per (distinct, not None) user, in the caller's transaction. Returns the rows."""
    now = now or utcnow()
    rows = []
    for uid in dict.fromkeys(u for u in user_ids if u):
        row = Notification(user_id=uid, ticket_id=ticket_id, lead_id=lead_id, kind=kind, body=(body or "")[:300],
                           created_at=now)
        db.session.add(row)
        rows.append(row)
    return rows


def unread_count(user_id, cap=99):
    """Unread notifications of a user, counted up to `cap` + 1 over the partial index."""
    sub = (select(Notification.id).where(Notification.user_id == user_id, Notification.read_at.is_(None))
           .limit(cap + 1).subquery())
    return db.session.execute(select(func.count()).select_from(sub)).scalar_one()


def recent(user_id, limit=30):
    """The newest notifications of a user (read or not), newest first."""
    return db.session.execute(select(Notification).where(Notification.user_id == user_id)
                              .order_by(Notification.id.desc()).limit(limit)).scalars().all()


def mark_read(user_id, ids=None, now=None):
    """Mark these (or all) of the user's unread notifications read. Returns how many changed."""
    stmt = update(Notification).where(Notification.user_id == user_id, Notification.read_at.is_(None))
    if ids is not None:
        stmt = stmt.where(Notification.id.in_(list(ids) or [-1]))
    return db.session.execute(stmt.values(read_at=now or utcnow())).rowcount
