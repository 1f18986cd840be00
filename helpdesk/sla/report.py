"""The SLA report: targets met, business-time medians and p90, breaches, and CSAT, for a period.

A clock run counts in the period it stopped in (met or breached; cancelled runs never count).
Times are business time of each run's own calendar (elapsed_seconds, stored when it stopped), so
the report reads stored numbers and never recomputes a calendar. Grouping is by the queue,
priority and assignee the ticket had when the run stopped (stored on the run). Median and p90 are
nearest-rank percentiles (PostgreSQL's percentile_disc), the same on both databases.
"""
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

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
    """Nearest-rank percentile of an ascending list (None when empty): PostgreSQL's percentile_disc."""
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, -(-len(sorted_values) * p // 100) - 1))
    return sorted_values[int(k)]


@dataclass
class Stat:
    met: int = 0
    breached: int = 0
    p50: float | None = None  # business seconds (nearest rank)
    p90: float | None = None

    @property
    def total(self):
        return self.met + self.breached

    @property
    def percent_met(self):
        return round(100.0 * self.met / self.total, 1) if self.total else None

    def hours(self, p):
        value = self.p50 if p == 50 else self.p90
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


def _aggregate(group_col, start, end, queue_ids):
    """{(group, target): Stat} over the covering index ix_sla_clocks_stopped. PostgreSQL counts and
    takes the percentiles in SQL; SQLite (no percentile function) returns the few columns to Python."""
    where = [SlaClock.stopped_at >= start, SlaClock.stopped_at < end, SlaClock.target.in_(MEASURED),
             SlaClock.state.in_(("met", "breached"))]
    if queue_ids is not None:
        where.append(SlaClock.queue_id.in_(list(queue_ids) or [-1]))
    cols = [group_col] if group_col is not None else []
    out = {}
    if db.session.get_bind().dialect.name == "postgresql":
        q = select(*cols, SlaClock.target, func.count().filter(SlaClock.state == "met"),
                   func.count().filter(SlaClock.state == "breached"),
                   func.percentile_disc(0.5).within_group(SlaClock.elapsed_seconds),
                   func.percentile_disc(0.9).within_group(SlaClock.elapsed_seconds)) \
            .where(*where).group_by(*cols, SlaClock.target)
        for row in db.session.execute(q):
            key = row[0] if cols else None
            target, met, breached, p50, p90 = row[-5:]
            out[(key, target)] = Stat(met, breached, p50, p90)
        return out
    values = defaultdict(list)
    tally = defaultdict(lambda: [0, 0])
    # Core rows (the session's connection), not ORM rows: tens of thousands of tuples, no entities.
    for row in db.session.connection().execute(select(*cols, SlaClock.target, SlaClock.state,
                                                      SlaClock.elapsed_seconds).where(*where)):
        key = (row[0] if cols else None, row[-3])
        tally[key][0 if row[-2] == "met" else 1] += 1
        if row[-1] is not None:
            values[key].append(row[-1])
    for key, (met, breached) in tally.items():
        ordered = sorted(values[key])
        out[key] = Stat(met, breached, percentile(ordered, 50), percentile(ordered, 90))
    return out


def sla_report(start, end, group="queue", queue_ids=None):
    """{rows: [Row], total: Row, breaches: [...]} for clock runs stopped in [start, end) (naive UTC),
    grouped by the queue, priority or assignee the ticket had when the run stopped.

    queue_ids: only these queues (None: all)."""
    if group not in GROUPS:
        group = "queue"
    col = {"queue": SlaClock.queue_id, "priority": SlaClock.priority, "agent": SlaClock.assignee_id}[group]
    groups = defaultdict(lambda: {t: Stat() for t in MEASURED})
    for (key, target), stat in _aggregate(col, start, end, queue_ids).items():
        groups[key][target] = stat
    total = {t: Stat() for t in MEASURED}
    for (_key, target), stat in _aggregate(None, start, end, queue_ids).items():
        total[target] = stat
    labels = _labels(group, list(groups))
    order = {"low": 0, "normal": 1, "high": 2, "urgent": 3}
    rows = sorted((Row(k, str(labels[k]), v) for k, v in groups.items()),
                  key=lambda r: (order.get(r.key, 9), r.label) if group == "priority" else (r.label,))
    return {"rows": rows, "total": Row(None, "", total), "breaches": breaches(start, end, queue_ids)}


def breaches(start, end, queue_ids=None, limit=BREACH_LIST_LIMIT):
    """Clock runs that breached in the period: stopped late in it, or breach alerted in it (still
    running). Two indexed reads (stopped_at; the partial index on breached_at), newest due first."""
    cols = (SlaClock, Ticket.number, Ticket.subject, Ticket.queue_id, Ticket.priority, Ticket.assignee_id)
    stopped = (select(*cols).join(Ticket, Ticket.id == SlaClock.ticket_id)
               .where(SlaClock.stopped_at >= start, SlaClock.stopped_at < end, SlaClock.state == "breached"))
    running = (select(*cols).join(Ticket, Ticket.id == SlaClock.ticket_id)
               .where(SlaClock.breached_at.is_not(None), SlaClock.breached_at >= start, SlaClock.breached_at < end,
                      SlaClock.state.in_(("running", "paused"))))
    rows = []
    for q in (stopped, running):
        if queue_ids is not None:
            q = q.where(Ticket.queue_id.in_(list(queue_ids) or [-1]))
        rows += db.session.execute(q.order_by(SlaClock.due_at.desc(), SlaClock.id.desc()).limit(limit)).all()
    rows.sort(key=lambda r: (r[0].due_at, r[0].id), reverse=True)
    return rows[:limit]


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
