"""The SLA report: targets met, business-time medians and p90, breaches, and CSAT, for a period.

A clock run counts in the period it stopped in (met or breached; cancelled runs never count).
Times are business time of each run's own calendar (elapsed_seconds, stored when it stopped), so
the report reads stored numbers and never recomputes a calendar. Grouping is by the ticket's
queue, priority and assignee (as they are now).
"""
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select

from ..auth.models import User
from ..extensions import db
from ..tickets.models import Queue, Ticket
from .models import CsatResponse, SlaClock

GROUPS = ("queue", "priority", "agent")
MEASURED = ("first_response", "resolution")
BREACH_LIST_LIMIT = 500


def period_bounds(start_day, end_day, tz="Asia/Jakarta"):
    """[start, end) in naive UTC for local dates start_day..end_day inclusive."""
    zone = ZoneInfo(tz)
    lo = datetime.combine(start_day, time(0), zone).astimezone(ZoneInfo("UTC")).replace(tzinfo=None)
    hi = datetime.combine(end_day + timedelta(days=1), time(0), zone).astimezone(ZoneInfo("UTC")).replace(tzinfo=None)
    return lo, hi


def percentile(sorted_values, p):
    """Nearest-rank percentile of an ascending list (None when empty)."""
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, -(-len(sorted_values) * p // 100) - 1))
    return sorted_values[int(k)]


def median(sorted_values):
    n = len(sorted_values)
    if not n:
        return None
    mid = n // 2
    return sorted_values[mid] if n % 2 else (sorted_values[mid - 1] + sorted_values[mid]) / 2


@dataclass
class Stat:
    met: int = 0
    breached: int = 0
    seconds: list = field(default_factory=list)

    @property
    def total(self):
        return self.met + self.breached

    @property
    def percent_met(self):
        return round(100.0 * self.met / self.total, 1) if self.total else None

    def hours(self, p):
        values = sorted(self.seconds)
        value = median(values) if p == 50 else percentile(values, p)
        return None if value is None else round(value / 3600, 2)


@dataclass
class Row:
    key: object
    label: str
    stats: dict  # target -> Stat


def _labels(group, keys):
    if group == "queue":
        names = dict(db.session.execute(select(Queue.id, Queue.name).where(Queue.id.in_([k for k in keys if k])))
                     .all()) if keys else {}
        return {k: names.get(k, "—") for k in keys}
    if group == "agent":
        names = dict(db.session.execute(select(User.id, User.name).where(User.id.in_([k for k in keys if k])))
                     .all()) if keys else {}
        return {k: names.get(k) or "—" for k in keys}
    return {k: k for k in keys}


def sla_report(start, end, group="queue", queue_ids=None):
    """{rows: [Row], total: Row, breaches: [...]} for clock runs stopped in [start, end) (naive UTC).

    queue_ids: only these queues (None: all)."""
    if group not in GROUPS:
        group = "queue"
    col = {"queue": Ticket.queue_id, "priority": Ticket.priority, "agent": Ticket.assignee_id}[group]
    q = (select(col, SlaClock.target, SlaClock.state, SlaClock.elapsed_seconds)
         .join(Ticket, Ticket.id == SlaClock.ticket_id)
         .where(SlaClock.stopped_at >= start, SlaClock.stopped_at < end, SlaClock.target.in_(MEASURED),
                SlaClock.state.in_(("met", "breached"))))
    if queue_ids is not None:
        q = q.where(Ticket.queue_id.in_(list(queue_ids) or [-1]))
    groups = defaultdict(lambda: {t: Stat() for t in MEASURED})
    total = {t: Stat() for t in MEASURED}
    for key, target, state, secs in db.session.execute(q):
        for bucket in (groups[key][target], total[target]):
            if state == "met":
                bucket.met += 1
            else:
                bucket.breached += 1
            if secs is not None:
                bucket.seconds.append(secs)
    labels = _labels(group, list(groups))
    order = {"low": 0, "normal": 1, "high": 2, "urgent": 3}
    rows = sorted((Row(k, str(labels[k]), v) for k, v in groups.items()),
                  key=lambda r: (order.get(r.key, 9), r.label) if group == "priority" else (r.label,))
    return {"rows": rows, "total": Row(None, "", total), "breaches": breaches(start, end, queue_ids)}


def breaches(start, end, queue_ids=None, limit=BREACH_LIST_LIMIT):
    """Clock runs that breached in the period: stopped late in it, or breach alerted in it (still running)."""
    q = (select(SlaClock, Ticket.number, Ticket.subject, Ticket.queue_id, Ticket.priority, Ticket.assignee_id)
         .join(Ticket, Ticket.id == SlaClock.ticket_id)
         .where(or_(and_(SlaClock.state == "breached", SlaClock.stopped_at >= start, SlaClock.stopped_at < end),
                    and_(SlaClock.state.in_(("running", "paused")), SlaClock.breached_at >= start,
                         SlaClock.breached_at < end)))
         .order_by(SlaClock.due_at.desc(), SlaClock.id.desc()).limit(limit))
    if queue_ids is not None:
        q = q.where(Ticket.queue_id.in_(list(queue_ids) or [-1]))
    return db.session.execute(q).all()


def csat_report(start, end, queue_ids=None):
    """CSAT per queue, per agent and per month (Asia/Jakarta months): {by: [(label, good, bad, pct)]}."""
    q = select(CsatResponse.queue_id, CsatResponse.agent_id, CsatResponse.rating, CsatResponse.updated_at) \
        .where(CsatResponse.updated_at >= start, CsatResponse.updated_at < end)
    if queue_ids is not None:
        q = q.where(CsatResponse.queue_id.in_(list(queue_ids) or [-1]))
    zone = ZoneInfo("Asia/Jakarta")
    tallies = {"queue": defaultdict(lambda: [0, 0]), "agent": defaultdict(lambda: [0, 0]),
               "month": defaultdict(lambda: [0, 0])}
    for queue_id, agent_id, rating, at in db.session.execute(q):
        i = 0 if rating == "good" else 1
        month = at.replace(tzinfo=ZoneInfo("UTC")).astimezone(zone).strftime("%Y-%m")
        for name, key in (("queue", queue_id), ("agent", agent_id), ("month", month)):
            tallies[name][key][i] += 1
    out = {}
    for name, tally in tallies.items():
        labels = _labels(name, list(tally)) if name != "month" else {k: k for k in tally}
        out[name] = sorted(((str(labels[k]), g, b, round(100.0 * g / (g + b), 1)) for k, (g, b) in tally.items()),
                           key=lambda r: r[0])
    return out


CSV_HEADER = ["group", "first_response_met", "first_response_breached", "first_response_pct_met",
              "first_response_median_h", "first_response_p90_h", "resolution_met", "resolution_breached",
              "resolution_pct_met", "resolution_median_h", "resolution_p90_h"]


def csv_rows(report):
    """The report as CSV rows (header first); the total last."""
    out = [CSV_HEADER]
    for row in list(report["rows"]) + [report["total"]]:
        line = [row.label or "TOTAL"]
        for target in MEASURED:
            s = row.stats[target]
            line += [s.met, s.breached, s.percent_met, s.hours(50), s.hours(90)]
        out.append(["" if v is None else v for v in line])
    return out
