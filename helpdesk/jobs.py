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
        return f"outbox-{self.id}"


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

def enqueue(func, *args, queue="default"):
    """Record a job in the current transaction; it is pushed to RQ after the commit.

    `func` is a dotted path (or a function) taking only ids and primitives.
    """
    path = func if isinstance(func, str) else f"{func.__module__}.{func.__name__}"
    row = OutboxJob(queue=queue, func=path, args=list(args))
    db.session.add(row)
    db.session.flush()
    db.session.info.setdefault("outbox_ids", []).append(row.id)
    return row


def _after_commit(session):
    ids = session.info.pop("outbox_ids", None)
    if ids and has_app_context():
        push(ids)


def _after_soft_rollback(session, _previous_transaction):
    if not session.in_transaction():
        session.info.pop("outbox_ids", None)


def install_session_hooks(session_cls):
    """Push outbox rows after each successful commit; forget them after a rollback."""
    if not event.contains(session_cls, "after_commit", _after_commit):
        event.listen(session_cls, "after_commit", _after_commit)
        event.listen(session_cls, "after_soft_rollback", _after_soft_rollback)


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
    try:
        redis = get_redis()
        with redis.pipeline() as pipe:
            for row_id, qname in rows:
                Queue(qname, connection=redis).enqueue(
                    "helpdesk.jobs.execute",
                    row_id,
                    job_id=f"outbox-{row_id}",
                    retry=Retry(max=current_app.config.get("JOB_MAX_RETRIES", 5), interval=RETRY_INTERVALS),
                    result_ttl=3600,
                    failure_ttl=7 * 24 * 3600,
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
    """Push rows never pushed, and re-push rows pushed long ago whose RQ job has vanished."""
    now = now or utcnow()
    batch = batch or current_app.config.get("OUTBOX_BATCH", 500)
    with db.engine.connect() as conn:
        never = conn.execute(
            select(OutboxJob.id).where(OutboxJob.done_at.is_(None), OutboxJob.pushed_at.is_(None))
            .order_by(OutboxJob.id).limit(batch)
        ).scalars().all()
        stale = conn.execute(
            select(OutboxJob.id).where(OutboxJob.done_at.is_(None), OutboxJob.pushed_at < now - STALE_PUSH)
            .order_by(OutboxJob.id).limit(batch)
        ).scalars().all()
    redis = get_redis()
    lost = [i for i in stale if not Job.exists(f"outbox-{i}", connection=redis)]
    return push(never + lost)


# ---------------------------------------------------------------- running a job

_worker_app = None


@contextmanager
def app_context():
    """The current app context, or one of an app created once per worker process."""
    global _worker_app
    if has_app_context():
        yield current_app
        return
    if _worker_app is None:
        from config import config_from_env

        from . import create_app

        _worker_app = create_app(config_from_env())
    with _worker_app.app_context():
        yield _worker_app


def execute(outbox_id):
    """The RQ entry point: run one outbox job once. Safe to run twice."""
    with app_context():
        row = db.session.get(OutboxJob, outbox_id)
        if row is None or row.done_at is not None:
            db.session.rollback()
            return "skipped"
        func = import_string(row.func)
        try:
            result = func(*row.args)
            row = db.session.get(OutboxJob, outbox_id)
            row.attempts += 1
            row.done_at = utcnow()
            row.last_error = None
            db.session.commit()
        except Exception:
            db.session.rollback()
            err = traceback.format_exc(limit=5)
            with db.engine.begin() as conn:
                conn.execute(
                    update(OutboxJob).where(OutboxJob.id == outbox_id)
                    .values(attempts=OutboxJob.attempts + 1, last_error=err[-4000:])
                )
            raise
        finally:
            db.session.remove()
        return result


# ---------------------------------------------------------------- periodic entry points (rq cron)

def cron_sweep_outbox():
    """rq cron: push outbox rows that missed their push."""
    with app_context():
        return sweep_outbox()


def cron_auto_close():
    """rq cron: close resolved tickets after AUTO_CLOSE_DAYS."""
    with app_context():
        from .tickets.services import auto_close_resolved

        n = auto_close_resolved(utcnow())
        db.session.commit()
        return n


def status(app=None):
    """Queue depths, failed jobs and outbox backlog, for `flask jobs status` and the admin page."""
    from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

    out = {"queues": {}, "redis": "ok"}
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
        failed = []
        for name in QUEUES:
            reg = FailedJobRegistry(queue=Queue(name, connection=redis))
            for job_id in reg.get_job_ids(0, 19):
                job = Job.fetch(job_id, connection=redis)
                failed.append({"id": job_id, "queue": name, "func": job.func_name, "args": list(job.args or ()),
                               "error": (job.latest_result().exc_string if job.latest_result() else "")[-500:]})
        out["failed_jobs"] = failed
    except (RedisError, OSError) as exc:
        out["redis"] = f"unavailable: {exc}"
    with db.engine.connect() as conn:
        out["outbox_unpushed"] = conn.execute(
            select(db.func.count()).select_from(OutboxJob).where(OutboxJob.done_at.is_(None), OutboxJob.pushed_at.is_(None))
        ).scalar()
        out["outbox_pending"] = conn.execute(
            select(db.func.count()).select_from(OutboxJob).where(OutboxJob.done_at.is_(None))
        ).scalar()
    return out
