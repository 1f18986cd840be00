"""The SLA sweep and its alert jobs (queue "sla").

`rq cron` runs `cron_sla_sweep` every minute (workers/cron.py). The sweep walks only the clock runs
with an alert due (the partial index ix_sla_clocks_alert_at), in batches, and per batch:

1. claims the due alerts with one INSERT INTO sla_alerts ... ON CONFLICT DO NOTHING RETURNING: the
   unique (clock_id, kind) key makes each warning and breach exactly once, whatever number of sweeps
   run at the same moment on however many machines;
2. advances the due clocks (one UPDATE per kind): a warning moves alert_at on to the deadline, a
   breach clears it. Clocks whose alert was claimed earlier but never advanced (a sweep that stopped
   between the two) are advanced too, without a second alert;
3. enqueues `send_alerts` for the alerts it claimed, one job per chunk, through the outbox;
4. commits. A crash before the commit leaves nothing behind; the next sweep does it again.

Sending is the jobs' work: `send_alerts(alert_ids)` mails and notifies the assignee (or the queue
lead), runs the policy's escalation on a breach, and marks each alert sent in the same transaction.

`sweep_health(now)` is the worker health shown by `flask jobs status` and the admin jobs page.
"""
import logging
import os
import socket
import time
from datetime import timedelta

from sqlalchemy import and_, case, delete, func, literal, select, update

from ..dbutil import insert_fn
from ..extensions import db
from ..timeutil import utcnow
from .models import SlaAlert, SlaClock, SlaPolicy, SweepRun

log = logging.getLogger(__name__)

SEND_JOB = "helpdesk.sla.jobs.send_alerts"
BATCH = 1000  # due clocks per claim statement
CHUNK = 200  # alerts per send_alerts job
STALE_AFTER = timedelta(minutes=5)  # a sweep older than this is a problem
KEEP_RUNS = timedelta(days=2)  # sweep runs kept for the health view


def _insert():
    return insert_fn(db.session)


def _due(now):
    """The due-clock condition, with `alert_at IS NOT NULL` spelled out: SQLite uses a partial index
    only when the query repeats its predicate."""
    return and_(SlaClock.alert_at.is_not(None), SlaClock.alert_at <= now)


def _kind(now):
    """warning while the warning is unclaimed, its time reached and the deadline still ahead; else
    breach (a warning whose deadline has passed too is skipped for the breach)."""
    return case((and_(SlaClock.warned_at.is_(None), SlaClock.warn_at.is_not(None),
                      SlaClock.alert_at == SlaClock.warn_at, SlaClock.due_at > now), literal("warning")),
                else_=literal("breach"))


def due_query(now, batch=BATCH):
    """The sweep's work list: (id, alert_at, kind) of the clock runs with an alert due, oldest first,
    over the partial index ix_sla_clocks_alert_at."""
    return (select(SlaClock.id, SlaClock.alert_at, _kind(now).label("kind")).where(_due(now))
            .order_by(SlaClock.alert_at, SlaClock.id).limit(batch))


def _host():
    return f"{socket.gethostname()}:{os.getpid()}"[:120]


def sweep(now=None, batch=BATCH, chunk=CHUNK, before_claim=None):
    """Claim, advance and enqueue every alert due at `now`. Commits per batch. Returns a dict:
    claimed, advanced, jobs, batches, claim_statements, lag_seconds.

    `before_claim`: called just before each claim statement (tests line up concurrent sweeps)."""
    now = now or utcnow()
    t0 = time.monotonic()
    stats = {"claimed": 0, "advanced": 0, "jobs": 0, "batches": 0, "claim_statements": 0, "lag_seconds": None}
    oldest = None
    kind = _kind(now)
    while True:
        due = db.session.execute(due_query(now, batch)).all()
        if not due:
            break
        stats["batches"] += 1
        ids = [r.id for r in due]
        alert_at = {r.id: r.alert_at for r in due}
        if before_claim is not None:
            before_claim()
        # 1. claim: one statement for the batch; a key already taken (another sweep, an earlier run) is skipped
        insert = _insert()
        claim = insert(SlaAlert).from_select(
            ["clock_id", "ticket_id", "kind", "created_at"],
            select(SlaClock.id, SlaClock.ticket_id, kind, literal(now, SlaAlert.created_at.type))
            .where(SlaClock.id.in_(ids), _due(now)),
        ).on_conflict_do_nothing(index_elements=["clock_id", "kind"])
        claimed = db.session.execute(claim.returning(SlaAlert.id, SlaAlert.clock_id, SlaAlert.kind)).all()
        stats["claim_statements"] += 1
        # 2. advance every due clock of the batch, claimed now or before (each UPDATE only touches
        #    clocks still due and not yet advanced for that kind, so a concurrent sweep's work stays)
        warn_ids = [r.id for r in due if r.kind == "warning"]
        breach_ids = [r.id for r in due if r.kind == "breach"]
        advanced = 0
        if warn_ids:
            advanced += db.session.execute(
                update(SlaClock).where(SlaClock.id.in_(warn_ids), _due(now), SlaClock.warned_at.is_(None),
                                       SlaClock.breached_at.is_(None))
                .values(warned_at=now, alert_at=SlaClock.due_at).execution_options(synchronize_session=False)
            ).rowcount
        if breach_ids:
            advanced += db.session.execute(
                update(SlaClock).where(SlaClock.id.in_(breach_ids), _due(now), SlaClock.breached_at.is_(None))
                .values(breached_at=now, alert_at=None).execution_options(synchronize_session=False)
            ).rowcount
        # 3. the alert jobs, in chunks, through the outbox (pushed after the commit)
        from .. import jobs

        alert_ids = sorted(r.id for r in claimed)
        for i in range(0, len(alert_ids), chunk):
            jobs.enqueue(SEND_JOB, alert_ids[i:i + chunk], queue="sla")
            stats["jobs"] += 1
        for r in claimed:
            at = alert_at.get(r.clock_id)
            if at is not None and (oldest is None or at < oldest):
                oldest = at
        db.session.commit()
        stats["claimed"] += len(claimed)
        stats["advanced"] += advanced
        if len(due) < batch:
            break
        if not claimed and not advanced:
            # every due row of a full batch was left as it was (changed under us): the next query
            # would return the same rows; the next tick looks again
            break
    stats["lag_seconds"] = (now - oldest).total_seconds() if oldest is not None else 0.0
    finished = now + timedelta(seconds=time.monotonic() - t0)
    db.session.add(SweepRun(started_at=now, finished_at=finished, claimed=stats["claimed"],
                            lag_seconds=stats["lag_seconds"], host=_host()))
    db.session.execute(delete(SweepRun).where(SweepRun.started_at < now - KEEP_RUNS))
    db.session.commit()
    return stats


def cron_sla_sweep():
    """rq cron (queue "sla", every minute): the SLA sweep."""
    from ..jobs import app_context

    with app_context():
        try:
            return sweep(utcnow())
        finally:
            db.session.remove()


def send_alerts(alert_ids, now=None):
    """The alert job: mail and notify, escalate on a breach, mark sent. Idempotent: an alert already
    sent is skipped; two runs at once send once (the sent_at claim is a conditional UPDATE in the
    transaction that holds the effects). Returns how many alerts had an effect."""
    from . import alerts

    now = now or utcnow()
    ids = db.session.execute(
        update(SlaAlert).where(SlaAlert.id.in_(list(alert_ids) or [-1]), SlaAlert.sent_at.is_(None))
        .values(sent_at=now).returning(SlaAlert.id).execution_options(synchronize_session=False)
    ).scalars().all()
    done = 0
    for alert in db.session.execute(select(SlaAlert).where(SlaAlert.id.in_(ids or [-1]))
                                    .order_by(SlaAlert.id)).scalars().all():
        if alerts.deliver(alert, now):
            done += 1
    db.session.flush()
    return done


def sweep_health(now=None):
    """The SLA worker's health: the last sweep, its lag, and a problem when the last sweep is older
    than 5 minutes (or there never was one while an SLA policy exists).

    {"last_sweep_at", "age_seconds", "lag_seconds", "claimed", "host", "policies", "overdue",
     "ok", "problem" ("never" | "stale" | None), "message"}"""
    now = now or utcnow()
    last = db.session.execute(select(SweepRun).order_by(SweepRun.started_at.desc(), SweepRun.id.desc())
                              .limit(1)).scalar_one_or_none()
    policies = db.session.execute(select(func.count()).select_from(SlaPolicy)).scalar_one()
    # alerts overdue by more than the stale limit (capped count, over the partial index)
    overdue = db.session.execute(select(func.count()).select_from(
        select(SlaClock.id).where(_due(now - STALE_AFTER)).limit(1000).subquery())).scalar_one()
    out = {"last_sweep_at": None, "age_seconds": None, "lag_seconds": None, "claimed": None, "host": None,
           "policies": policies, "overdue": overdue, "ok": True, "problem": None, "message": None}
    if last is None:
        if policies:
            out.update(ok=False, problem="never",
                       message="no SLA sweep has ever run: start `rq cron workers/cron.py` and an `rq worker sla`")
        return out
    at = last.started_at
    age = (now - at).total_seconds()
    out.update(last_sweep_at=at, age_seconds=age, lag_seconds=last.lag_seconds, claimed=last.claimed, host=last.host)
    if age > STALE_AFTER.total_seconds():
        out.update(ok=False, problem="stale",
                   message=f"the last SLA sweep ran {round(age / 60)} minutes ago (more than 5): "
                           "is `rq cron` running, and an `rq worker` for the sla queue?")
    return out
