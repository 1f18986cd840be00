"""Ticket counts per (queue, status, unassigned), maintained on every ORM flush.

Sidebars and queue tabs read these rows instead of counting tickets. Bulk loaders that bypass the
ORM call rebuild().
"""
from collections import Counter as Tally

from sqlalchemy import Boolean, bindparam, event, func, inspect, select, text

from ..extensions import db
from .models import Ticket, TicketCount


def _key(queue_id, status, assignee_id):
    return (queue_id, status, assignee_id is None)


def _old(state, attr, current):
    hist = state.attrs[attr].history
    if hist.added or hist.deleted:
        # A change from "never set" reports no deleted value: the old value was NULL.
        return hist.deleted[0] if hist.deleted else None
    return current


def _collect(session, _ctx, _instances):
    tally = session.info.setdefault("ticket_count_deltas", Tally())
    for obj in session.new:
        if isinstance(obj, Ticket):
            tally[_key(obj.queue_id, obj.status or "new", obj.assignee_id)] += 1
    for obj in session.dirty:
        if isinstance(obj, Ticket):
            st = inspect(obj)
            old = _key(_old(st, "queue_id", obj.queue_id), _old(st, "status", obj.status),
                       _old(st, "assignee_id", obj.assignee_id))
            new = _key(obj.queue_id, obj.status, obj.assignee_id)
            if old != new:
                tally[old] -= 1
                tally[new] += 1
    for obj in session.deleted:
        if isinstance(obj, Ticket):
            tally[_key(obj.queue_id, obj.status, obj.assignee_id)] -= 1


# SQL text, the same on SQLite and PostgreSQL: compiled once (an ON CONFLICT construct is compiled
# again on every execution, and this runs on every flush that adds or moves a ticket).
_ADD = text(
    "INSERT INTO ticket_counts (queue_id, status, unassigned, n) VALUES (:queue_id, :status, :unassigned, :n) "
    "ON CONFLICT (queue_id, status, unassigned) DO UPDATE SET n = ticket_counts.n + excluded.n"
).bindparams(bindparam("unassigned", type_=Boolean()))


def _apply(session, _ctx):
    tally = session.info.pop("ticket_count_deltas", None)
    if not tally:
        return
    for (queue_id, status, unassigned), delta in sorted(tally.items(), key=lambda kv: (kv[0][0] or 0, kv[0][1], kv[0][2])):
        if delta:
            session.execute(_ADD, {"queue_id": queue_id, "status": status, "unassigned": unassigned, "n": delta})


def install(session_cls):
    """Register the flush hooks."""
    if not event.contains(session_cls, "before_flush", _collect):
        event.listen(session_cls, "before_flush", _collect)
        event.listen(session_cls, "after_flush", _apply)


def rebuild(session):
    """Recount from the tickets table (after a bulk load)."""
    session.execute(TicketCount.__table__.delete())
    rows = session.execute(
        select(Ticket.queue_id, Ticket.status, Ticket.assignee_id.is_(None), func.count())
        .group_by(Ticket.queue_id, Ticket.status, Ticket.assignee_id.is_(None))
    ).all()
    tally = Tally()
    for q, s, un, n in rows:
        tally[(q, s, bool(un))] += n
    if tally:
        session.execute(TicketCount.__table__.insert(), [
            {"queue_id": q, "status": s, "unassigned": un, "n": n} for (q, s, un), n in tally.items()
        ])


def counts(session, queue_ids=None):
    """{(queue_id, status, unassigned): n} for the given queues (all when None)."""
    stmt = select(TicketCount.queue_id, TicketCount.status, TicketCount.unassigned, TicketCount.n)
    if queue_ids is not None:
        stmt = stmt.where(TicketCount.queue_id.in_(list(queue_ids) or [-1]))
    return {(q, s, bool(u)): n for q, s, u, n in session.execute(stmt)}


__all__ = ["install", "rebuild", "counts", "db"]
