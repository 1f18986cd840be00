"""Background-job plumbing: a transactional outbox in front of RQ.

`enqueue()` writes an OutboxJob row in the caller's transaction. After that transaction commits,
the rows are pushed to RQ; if Redis is down, or the process dies between commit and push, the
periodic `sweep_outbox` pushes them later. The RQ job is always `execute(outbox_id)`, which runs
the named function in an app context and marks the row done in the same transaction as the
function's own database work, so a job that is pushed twice runs its effect once.
"""
import logging
import traceback
from contextlib import contextmanager
from datetime import timedelta

from flask import current_app, has_app_context
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry
from rq.job import Job
from sqlalchemy import event, select, update
from werkzeug.utils import import_string

from .extensions import db
from .timeutil import utcnow

log = logging.getLogger(__name__)

QUEUES = ("mail", "sla", "default")
RETRY_INTERVALS = [10, 30, 120, 600, 1800]
STALE_PUSH = timedelta(minutes=15)
FAILURE_TTL = 7 * 24 * 3600


def rq_job_id(outbox_id):
    """The RQ job id of an outbox row: fixed, so pushing a row twice replaces rather than duplicates."""
    return f"outbox-{outbox_id}"


class OutboxJob(db.Model):
    """A job written in the same transaction as the change that causes it."""

    __tablename__ = "outbox_jobs"
    id = db.Column(db.Integer, primary_key=True)
    queue = db.Column(db.String(20), nullable=False, default="default")
    func = db.Column(db.String(200), nullable=False)
    args = db.Column(db.JSON, nullable=False, default=list)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    pushed_at = db.Column(db.DateTime)
    done_at = db.Column(db.DateTime)
    attempts = db.Column(db.Integer, nullable=False, default=0)
    last_error = db.Column(db.Text)

    __table_args__ = (
        db.Index("ix_outbox_pending", "done_at", "pushed_at", "id"),
    )

    @property
    def rq_id(self):
        return rq_job_id(self.id)


# ---------------------------------------------------------------- Redis connection

def redis_url(app=None):
    """REDIS_URL, or the embedded server's unix socket under instance/."""
    app = app or current_app
    return app.config.get("REDIS_URL") or f"unix://{app.config['INSTANCE_PATH']}/redis.sock"


def get_redis(app=None):
    """A Redis client for this app (cached on the app)."""
    app = app or current_app
    conn = app.extensions.get("helpdesk_redis")
    if conn is None:
        conn = Redis.from_url(redis_url(app), socket_connect_timeout=2, socket_timeout=10)
        app.extensions["helpdesk_redis"] = conn
    return conn


def get_queue(name, app=None):
    """The RQ queue of that name (mail, sla or default)."""
    if name not in QUEUES:
        raise ValueError(f"unknown queue {name!r}")
    return Queue(name, connection=get_redis(app))


# ---------------------------------------------------------------- enqueue through the outbox

def enqueue(func, *args, queue="default", flush=True):
    """Record a job in the current transaction; it is pushed to RQ after the commit.

    `func` is a dotted path (or a function) taking only ids and primitives. `flush=False`: the row
    (and its id) is written by the next flush, at the latest the commit's, together with whatever
    else the caller writes (one flush fewer for a caller that writes more).
    """
    path = func if isinstance(func, str) else f"{func.__module__}.{func.__name__}"
    row = OutboxJob(queue=queue, func=path, args=list(args))
    db.session.add(row)
    db.session.info.setdefault("outbox_unflushed", []).append(row)  # its id is noted by _after_flush
    if flush:
        db.session.flush()
    return row


def _after_flush(session, _ctx):
    rows = session.info.get("outbox_unflushed")
    if not rows:
        return
    written = [r for r in rows if r.id is not None]
    if written:
        session.info.setdefault("outbox_ids", []).extend(r.id for r in written)
    # a row whose savepoint was rolled back before it was flushed is no longer in the session
    session.info["outbox_unflushed"] = [r for r in rows if r.id is None and r in session]


def _after_commit(session):
    if session.in_nested_transaction():
        # A savepoint was released (SQLAlchemy fires after_commit for it too): the rows are not
        # committed yet, so another connection cannot see them. Wait for the outer commit.
        return
    ids = session.info.pop("outbox_ids", None)
    if ids and has_app_context():
        try:
            push(ids)
        except Exception:  # the commit succeeded: never turn it into an error; the sweep pushes later
            log.exception("outbox: push after commit failed, %d job(s) left for the sweep", len(ids))


def _after_soft_rollback(session, _previous_transaction):
    if not session.in_transaction():
        session.info.pop("outbox_ids", None)
        session.info.pop("outbox_unflushed", None)


def install_session_hooks(session_cls):
    """Push outbox rows after each successful commit; forget them after a rollback."""
    if not event.contains(session_cls, "after_commit", _after_commit):
        event.listen(session_cls, "after_commit", _after_commit)
        event.listen(session_cls, "after_soft_rollback", _after_soft_rollback)
        event.listen(session_cls, "after_flush_postexec", _after_flush)


def push(ids):
    """Push these outbox rows to RQ and mark them pushed. Returns how many were pushed.

    Uses its own connection so it never disturbs the caller's session; if Redis is down the rows
    stay unpushed for the sweep.
    """
    if not ids:
        return 0
    with db.engine.connect() as conn:
        rows = conn.execute(
            select(OutboxJob.id, OutboxJob.queue).where(OutboxJob.id.in_(ids), OutboxJob.done_at.is_(None))
        ).all()
    pushed = []
    retries = current_app.config.get("JOB_MAX_RETRIES", 5)
    retry = Retry(max=retries, interval=RETRY_INTERVALS[:retries]) if retries > 0 else None
    try:
        redis = get_redis()
        with redis.pipeline() as pipe:
            for row_id, qname in rows:
                Queue(qname, connection=redis).enqueue(
                    "helpdesk.jobs.execute",
                    row_id,
                    job_id=rq_job_id(row_id),
                    retry=retry,
                    result_ttl=3600,
                    failure_ttl=FAILURE_TTL,
                    pipeline=pipe,
                )
                pushed.append(row_id)
            pipe.execute()
    except (RedisError, OSError) as exc:
        log.warning("outbox: Redis unavailable, %d job(s) left for the sweep: %s", len(rows), exc)
        return 0
    if pushed:
        with db.engine.begin() as conn:
            conn.execute(update(OutboxJob).where(OutboxJob.id.in_(pushed)).values(pushed_at=utcnow()))
    return len(pushed)


def sweep_outbox(now=None, batch=None):
    """Push rows never pushed, and re-push rows pushed long ago whose RQ job has vanished.

    A row whose attempts are used up (its job sits in RQ's failed registry, then expires) is left
    alone: `flask jobs retry` pushes it again once the cause is fixed.
    """
    now = now or utcnow()
    batch = batch or current_app.config.get("OUTBOX_BATCH", 500)
    max_attempts = current_app.config.get("JOB_MAX_RETRIES", 5) + 1
    with db.engine.connect() as conn:
        never = conn.execute(
            select(OutboxJob.id).where(OutboxJob.done_at.is_(None), OutboxJob.pushed_at.is_(None))
            .order_by(OutboxJob.id).limit(batch)
        ).scalars().all()
        stale = conn.execute(
            select(OutboxJob.id).where(OutboxJob.done_at.is_(None), OutboxJob.pushed_at < now - STALE_PUSH,
                                       OutboxJob.attempts < max_attempts)
            .order_by(OutboxJob.id).limit(batch)
        ).scalars().all()
    lost = []
    if stale:
        try:
            with get_redis().pipeline(transaction=False) as pipe:
                for i in stale:
                    pipe.exists(Job.key_for(rq_job_id(i)))
                lost = [i for i, exists in zip(stale, pipe.execute()) if not exists]
        except (RedisError, OSError) as exc:
            log.warning("outbox sweep: Redis unavailable: %s", exc)
            return 0
    return push(never + lost)


def failed_ids(limit=1000):
    """Outbox rows not done whose last attempt failed, oldest first."""
    with db.engine.connect() as conn:
        return conn.execute(
            select(OutboxJob.id).where(OutboxJob.done_at.is_(None), OutboxJob.last_error.is_not(None))
            .order_by(OutboxJob.id).limit(limit)
        ).scalars().all()


# ---------------------------------------------------------------- running a job

_worker_app = None


def worker_app():
    """This process's app for running jobs, created once (rq workers preload it before forking)."""
    global _worker_app
    if _worker_app is None:
        from config import config_from_env

        from . import create_app

        _worker_app = create_app(config_from_env())
    return _worker_app


def after_fork():
    """In a forked work horse: forget database connections inherited from the parent process."""
    if _worker_app is not None:
        with _worker_app.app_context():
            db.engine.dispose(close=False)


@contextmanager
def app_context():
    """The current app context, or one of this process's worker app."""
    if has_app_context():
        yield current_app
        return
    with worker_app().app_context():
        yield current_app


def _record_failure(outbox_id, error):
    with db.engine.begin() as conn:
        conn.execute(
            update(OutboxJob).where(OutboxJob.id == outbox_id)
            .values(attempts=OutboxJob.attempts + 1, last_error=error[-4000:])
        )


def execute(outbox_id):
    """The RQ entry point: run one outbox job once. Safe to run twice, also concurrently.

    The row is marked done by a conditional UPDATE in the job's own transaction: if another run
    marked it first, this run's database work is rolled back instead of committed twice.
    """
    with app_context():
        try:
            row = db.session.get(OutboxJob, outbox_id)
            if row is None or row.done_at is not None:
                db.session.rollback()
                return "skipped"
            func, args = import_string(row.func), list(row.args or ())
            try:
                result = func(*args)
                claimed = db.session.execute(
                    update(OutboxJob).where(OutboxJob.id == outbox_id, OutboxJob.done_at.is_(None))
                    .values(done_at=utcnow(), attempts=OutboxJob.attempts + 1, last_error=None)
                    .execution_options(synchronize_session=False)
                ).rowcount
                if claimed != 1:
                    db.session.rollback()
                    return "skipped"
                db.session.commit()
            except Exception:
                db.session.rollback()
                _record_failure(outbox_id, traceback.format_exc(limit=5))
                raise
            return result
        finally:
            db.session.remove()


# ---------------------------------------------------------------- periodic entry points (rq cron)

def cron_sweep_outbox():
    """rq cron: push outbox rows that missed their push."""
    with app_context():
        return sweep_outbox()


def cron_auto_close():
    """rq cron: close resolved tickets after AUTO_CLOSE_DAYS."""
    with app_context():
        from .tickets.services import auto_close_resolved

        try:
            n = auto_close_resolved(utcnow())
            db.session.commit()
        finally:
            db.session.remove()
        return n


def status(app=None):
    """Queue depths, workers, failed jobs and outbox backlog, for `flask jobs status`."""
    from rq import Worker
    from rq.cron import CronScheduler
    from rq.exceptions import NoSuchJobError
    from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

    out = {"queues": {}, "redis": "ok", "workers": None, "cron_schedulers": None, "failed_jobs": []}
    try:
        redis = get_redis(app)
        for name in QUEUES:
            q = Queue(name, connection=redis)
            out["queues"][name] = {
                "queued": q.count,
                "started": StartedJobRegistry(queue=q).count,
                "scheduled": ScheduledJobRegistry(queue=q).count,
                "failed": FailedJobRegistry(queue=q).count,
            }
        out["workers"] = Worker.count(connection=redis)
        out["cron_schedulers"] = len(CronScheduler.all(redis))
        for name in QUEUES:
            reg = FailedJobRegistry(queue=Queue(name, connection=redis))
            for job_id in reg.get_job_ids(0, 19):
                try:
                    job = Job.fetch(job_id, connection=redis)
                except NoSuchJobError:
                    continue
                result = job.latest_result()
                out["failed_jobs"].append({"id": job_id, "queue": name, "func": job.func_name,
                                           "args": list(job.args or ()),
                                           "error": ((result.exc_string if result else "") or "")[-500:]})
    except (RedisError, OSError) as exc:
        out["redis"] = f"unavailable: {exc}"
    with db.engine.connect() as conn:
        pending = OutboxJob.done_at.is_(None)
        count = select(db.func.count()).select_from(OutboxJob)
        out["outbox_pending"] = conn.execute(count.where(pending)).scalar()
        out["outbox_unpushed"] = conn.execute(count.where(pending, OutboxJob.pushed_at.is_(None))).scalar()
        out["outbox_failing"] = conn.execute(count.where(pending, OutboxJob.last_error.is_not(None))).scalar()
    return out
