"""Job plumbing against a real Redis: the outbox, pushing after commit, idempotence, retries, a Redis
outage (on a private server), the stale re-push, the rq cron entries, auto-close and `flask jobs status`."""
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
from rq.cron import CronScheduler
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, ScheduledJobRegistry
from sqlalchemy import func, select, update

from helpdesk import jobs
from helpdesk.embedded_redis import EmbeddedRedis, free_port
from helpdesk.extensions import db, mail
from helpdesk.jobs import OutboxJob
from helpdesk.tickets import services
from helpdesk.tickets.models import AuditEvent, Ticket
from helpdesk.timeutil import utcnow
from tests.factories import Factories

ROOT = Path(__file__).resolve().parents[2]
from tests.conftest import work_jobs as work


# ---------------------------------------------------------------- job functions used by these tests

def flaky(marker):
    """Fails until the file `marker` exists, then appends a line to it."""
    path = Path(marker)
    if not path.exists():
        raise RuntimeError("flaky: not yet")
    with path.open("a") as fh:
        fh.write("ran\n")
    return "ok"


def loses_the_race(outbox_id):
    """Writes to the database while 'another worker' marks the same outbox row done first."""
    db.session.add(AuditEvent(object_type="test", action="race-loser", note="must be rolled back"))
    with db.engine.begin() as conn:
        conn.execute(update(OutboxJob).where(OutboxJob.id == outbox_id).values(done_at=utcnow(), attempts=1))
    return "ran"


# ---------------------------------------------------------------- helpers


def outbox_rows():
    return db.session.execute(select(OutboxJob).order_by(OutboxJob.id)).scalars().all()


def queued():
    return {q: jobs.get_queue(q).job_ids for q in jobs.QUEUES if jobs.get_queue(q).job_ids}


def new_desk():
    make = Factories()
    q = make.queue(slug="technical-support", name="Technical Support")
    agent = make.user(roles=["technical_support"], queues=[q])
    cust = make.customer()
    db.session.commit()
    return SimpleNamespace(make=make, q_id=q.id, agent_id=agent.id, agent_email=agent.email, cust_id=cust.id)


def new_ticket(desk, subject="Website down", **kw):
    return services.create_ticket(customer_id=desk.cust_id, subject=subject, body_text="Situs kami error 500.",
                                  channel="web", queue_id=desk.q_id, **kw)


@pytest.fixture
def desk(app):
    return new_desk()


# ---------------------------------------------------------------- outbox and push

def test_enqueue_in_a_rolled_back_transaction_never_reaches_rq(app, desk):
    new_ticket(desk)
    db.session.flush()  # enqueue() leaves its row to the next flush, which notes its id for the push
    assert db.session.info.get("outbox_ids")
    db.session.rollback()
    assert not db.session.info.get("outbox_ids") and not db.session.info.get("outbox_unflushed")
    desk.make.customer()  # a later transaction in the same session commits other work
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(OutboxJob)) == 0
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == 0
    assert queued() == {}


def test_commit_pushes_the_job_and_the_worker_runs_its_effect(app, desk, run_jobs):
    t = new_ticket(desk)
    db.session.commit()
    number = t.number
    [row] = outbox_rows()
    assert row.func == "helpdesk.mail.jobs.send_outbound" and row.queue == "mail"
    assert row.pushed_at is not None and row.done_at is None
    assert queued() == {"mail": [jobs.rq_job_id(row.id)]}
    row_id = row.id
    with mail.record_messages() as sent:
        run_jobs()
    assert [m.recipients for m in sent] == [[desk.agent_email]]
    assert f"[#{number}]" in sent[0].subject and "Website down" in sent[0].subject
    row = db.session.get(OutboxJob, row_id)
    assert row.done_at is not None and row.attempts == 1 and row.last_error is None
    assert queued() == {}


def test_a_job_pushed_twice_or_executed_twice_runs_its_effect_once(app, desk, run_jobs):
    new_ticket(desk)
    db.session.commit()
    [row] = outbox_rows()
    row_id = row.id
    assert jobs.push([row_id]) == 1  # a second push, as when the sweep races the commit hook
    assert queued() == {"mail": [jobs.rq_job_id(row_id)] * 2}
    with mail.record_messages() as sent:
        run_jobs()
        assert jobs.execute(row_id) == "skipped"
    assert len(sent) == 1
    assert db.session.get(OutboxJob, row_id).attempts == 1


def test_a_run_that_loses_the_race_rolls_its_database_work_back(app):
    row = jobs.enqueue(loses_the_race, 0)
    row.args = [row.id]
    db.session.commit()
    row_id = row.id
    assert jobs.execute(row_id) == "skipped"
    assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "race-loser")) == 0
    assert db.session.get(OutboxJob, row_id).attempts == 1  # the winner's single run


def test_a_failing_job_records_the_error_and_rq_retries_it(app, tmp_path, run_jobs):
    marker = tmp_path / "flaky-ok"
    row = jobs.enqueue(flaky, str(marker))
    db.session.commit()
    row_id = row.id
    run_jobs()
    row = db.session.get(OutboxJob, row_id)
    assert row.attempts == 1 and row.done_at is None and "RuntimeError: flaky: not yet" in row.last_error
    redis = jobs.get_redis()
    job = Job.fetch(jobs.rq_job_id(row_id), connection=redis)
    assert job.get_status() == JobStatus.SCHEDULED
    assert job.retries_left == app.config["JOB_MAX_RETRIES"] - 1
    registry = ScheduledJobRegistry(queue=jobs.get_queue("default"))
    due = registry.get_scheduled_time(job.id)
    assert timedelta(seconds=5) < due - datetime.now(timezone.utc) <= timedelta(seconds=jobs.RETRY_INTERVALS[0])

    marker.touch()  # the cause is fixed; bring the retry forward instead of waiting for it
    registry.schedule(job, datetime.now(timezone.utc) - timedelta(seconds=1))
    work(with_scheduler=True)  # RQ's scheduler moves the due retry to the queue, the worker runs it
    row = db.session.get(OutboxJob, row_id)
    assert row.done_at is not None and row.attempts == 2 and row.last_error is None
    assert marker.read_text() == "ran\n"
    assert Job.fetch(jobs.rq_job_id(row_id), connection=redis).get_status() == JobStatus.FINISHED


def test_sweep_pushes_only_rows_that_need_it(app, desk, run_jobs):
    max_attempts = app.config["JOB_MAX_RETRIES"] + 1
    for subject in ("lost", "still queued", "exhausted", "recent"):
        new_ticket(desk, subject=subject)
        db.session.commit()
    lost, still_queued, exhausted, recent = [r.id for r in outbox_rows()]
    redis = jobs.get_redis()
    for row_id in (lost, exhausted, recent):  # their jobs vanished from Redis (lost data, expired...)
        Job.fetch(jobs.rq_job_id(row_id), connection=redis).delete()
    long_ago = utcnow() - jobs.STALE_PUSH - timedelta(minutes=1)
    db.session.execute(update(OutboxJob).where(OutboxJob.id.in_([lost, still_queued, exhausted]))
                       .values(pushed_at=long_ago))
    db.session.execute(update(OutboxJob).where(OutboxJob.id == exhausted).values(attempts=max_attempts))
    db.session.commit()

    assert jobs.sweep_outbox() == 1
    assert sorted(queued()["mail"]) == sorted([jobs.rq_job_id(still_queued), jobs.rq_job_id(lost)])
    with mail.record_messages() as sent:
        run_jobs()
    assert sorted(m.subject.split(": ", 1)[1] for m in sent) == ["lost", "still queued"]
    done = {r.id: r.done_at is not None for r in outbox_rows()}
    assert done == {lost: True, still_queued: True, exhausted: False, recent: False}
    assert jobs.sweep_outbox() == 0


# ---------------------------------------------------------------- Redis outage (a private server)

class PrivateRedis:
    """A Redis server of this test only, on its own port; it can be killed and started again."""

    def __init__(self, directory):
        self.dir, self.port, self.server = directory, free_port(), None

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        self.server = EmbeddedRedis(self.dir, port=self.port, persist=False).start()
        return self

    def kill(self):
        self.server.kill()

    def stop(self):
        if self.server is not None:
            self.server.stop()


@pytest.fixture
def private_redis(tmp_path):
    server = PrivateRedis(tmp_path / "private-redis").start()
    yield server
    server.stop()


def test_redis_down_keeps_the_ticket_and_the_job_runs_once_after_recovery(app_factory, private_redis):
    outage_app = app_factory(REDIS_URL=private_redis.url)
    with outage_app.app_context():
        desk = new_desk()
        private_redis.kill()
        t = new_ticket(desk, subject="Saved while Redis was down")
        db.session.commit()  # must not raise
        ticket_id = t.id
        db.session.remove()
        assert db.session.get(Ticket, ticket_id).subject == "Saved while Redis was down"
        [row] = outbox_rows()
        assert row.pushed_at is None and row.done_at is None
        row_id = row.id
        assert jobs.sweep_outbox() == 0  # still down: nothing pushed, no error
        status = outage_app.test_cli_runner().invoke(args=["jobs", "status"])
        assert status.exit_code == 0 and "redis: unavailable" in status.output
        assert "outbox: pending=1 unpushed=1" in status.output

        private_redis.start()  # a new, empty Redis on the same address
        assert jobs.cron_sweep_outbox() == 1
        with mail.record_messages() as sent:
            work()
            assert jobs.sweep_outbox() == 0
            work()
        assert len(sent) == 1 and sent[0].recipients == [desk.agent_email]
        row = db.session.get(OutboxJob, row_id)
        assert row.done_at is not None and row.attempts == 1


# ---------------------------------------------------------------- periodic jobs (rq cron)

def test_cron_config_registers_the_sweeps_and_they_run(app, desk, run_jobs):
    cron = CronScheduler(connection=jobs.get_redis())
    cron.load_config_from_file("workers/cron.py")
    entries = {j.func_name: (j.queue_name, j.interval) for j in cron.get_jobs()}
    assert entries == {"helpdesk.jobs.cron_sweep_outbox": ("default", 30),
                       "helpdesk.jobs.cron_auto_close": ("default", 600),
                       "helpdesk.mail.fetch.cron_poll": ("mail", 60),
                       "helpdesk.mail.scan_jobs.cron_rescan_pending": ("default", 300),
                       "helpdesk.sla.jobs.cron_sla_sweep": ("sla", 60),
                       "helpdesk.leads.jobs.cron_lead_reminders": ("default", 60),
                       "helpdesk.sales.jobs.cron_expire_offers": ("default", 3600),
                       "helpdesk.sales.renewals.cron_renewals": ("default", 3600),
                       "helpdesk.maintenance.jobs.cron_maintenance_sweep": ("default", 60),
                       "helpdesk.campaigns.jobs.cron_campaigns": ("default", 60)}
    new_ticket(desk)
    db.session.commit()
    jobs.get_queue("mail").empty()  # as if the process had died between the commit and the push
    db.session.execute(update(OutboxJob).values(pushed_at=None))
    db.session.commit()
    assert {j.func_name for j in cron.enqueue_jobs()} == set(entries)  # interval entries run at once
    run_jobs()  # the sweep pushes the missed row
    run_jobs()  # and the worker runs it
    assert all(r.done_at is not None for r in outbox_rows())


def test_cron_auto_close_closes_tickets_resolved_longer_than_the_limit(app, desk, run_jobs):
    assert app.config["AUTO_CLOSE_DAYS"] == 7
    now = utcnow()
    old = new_ticket(desk, subject="resolved 8 days ago", now=now - timedelta(days=9))
    recent = new_ticket(desk, subject="resolved 2 days ago", now=now - timedelta(days=3))
    services.change_status(old.id, desk.agent_id, "resolved", now=now - timedelta(days=8))
    services.change_status(recent.id, desk.agent_id, "resolved", now=now - timedelta(days=2))
    db.session.commit()
    old_id, recent_id = old.id, recent.id

    jobs.get_queue("default").enqueue(jobs.cron_auto_close)  # what `rq cron` does every 10 minutes
    run_jobs()
    old, recent = db.session.get(Ticket, old_id), db.session.get(Ticket, recent_id)
    assert old.status == "closed" and old.closed_at is not None
    assert recent.status == "resolved" and recent.closed_at is None
    event = db.session.execute(select(AuditEvent).where(AuditEvent.ticket_id == old_id, AuditEvent.action == "status")
                               .order_by(AuditEvent.id.desc())).scalars().first()
    assert (event.old_value, event.new_value, event.actor_user_id) == ("resolved", "closed", None)
    assert "auto-closed" in event.note
    assert jobs.cron_auto_close() == 0  # a second tick changes nothing


# ---------------------------------------------------------------- flask jobs status

def test_jobs_status_command_shows_queues_outbox_and_failed_jobs(app, desk, tmp_path, run_jobs):
    app.config["JOB_MAX_RETRIES"] = 0  # fail for good at the first error
    failing = jobs.enqueue(flaky, str(tmp_path / "never"))
    db.session.commit()
    failing_id = failing.id
    run_jobs()
    new_ticket(desk)
    db.session.commit()  # pushed, no worker running

    result = app.test_cli_runner().invoke(args=["jobs", "status"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "redis: ok" in lines
    assert "workers: 0  rq cron schedulers: 0" in lines
    assert "queue mail: queued=1 started=0 scheduled=0 failed=0" in lines
    assert "queue default: queued=0 started=0 scheduled=0 failed=1" in lines
    assert "outbox: pending=2 unpushed=0 failing=1" in lines
    assert (f"failed outbox-{failing_id} [default] helpdesk.jobs.execute({failing_id},): "
            "RuntimeError: flaky: not yet") in lines

    data = json.loads(app.test_cli_runner().invoke(args=["jobs", "status", "--json"]).output)
    assert data["queues"]["mail"]["queued"] == 1 and data["outbox_failing"] == 1
    assert [j["id"] for j in data["failed_jobs"]] == [f"outbox-{failing_id}"]

    (tmp_path / "never").touch()
    retry = app.test_cli_runner().invoke(args=["jobs", "retry", "--all-failed"])
    assert retry.output.strip() == "pushed 1"
    run_jobs()
    assert db.session.get(OutboxJob, failing_id).done_at is not None


def test_a_job_enqueued_inside_a_savepoint_is_pushed_after_the_outer_commit(app, desk):
    """SQLAlchemy fires after_commit when a savepoint is released too; pushing then would find the
    row invisible to other connections and lose the push until the sweep."""
    with db.session.begin_nested():
        new_ticket(desk)
    [row] = outbox_rows()
    assert row.pushed_at is None  # not pushed at the savepoint
    db.session.commit()
    [row] = outbox_rows()
    assert row.pushed_at is not None and queued() == {"mail": [jobs.rq_job_id(row.id)]}
