"""The SLA sweep and its alert jobs against a real database, Redis and RQ worker, with the time passed
in (`sweep(now)`) or travelled to (time-machine) where the code reads the clock itself.

The default policy runs on the office calendar (Mon-Fri 08:00-17:00, Sat 08:00-12:00 WIB), warning at
75 % of the target. A normal ticket created Monday 7 Dec 2026 09:00 WIB: first response due 13:00 WIB,
its warning at 12:00 WIB.
"""
import multiprocessing
import traceback
from datetime import datetime, timedelta, timezone

import pytest
import time_machine
from rq.cron import CronScheduler
from sqlalchemy import func, select, text

from helpdesk import jobs
from helpdesk.extensions import db, mail
from helpdesk.jobs import OutboxJob
from helpdesk.mail.models import OutboundMail
from helpdesk.sla import jobs as sla_jobs
from helpdesk.sla.models import Notification, SlaAlert, SlaClock, SlaPolicy, SweepRun
from helpdesk.tickets import services
from helpdesk.tickets.models import AuditEvent, Ticket
from tests.factories import PASSWORD

START = datetime(2026, 12, 7, 2, 0)  # Monday 09:00 WIB as naive UTC
FR_WARN = START + timedelta(hours=3)  # 12:00 WIB
FR_DUE = START + timedelta(hours=4)  # 13:00 WIB
MINUTE = timedelta(minutes=1)


@pytest.fixture
def desk(app, make):
    q = make.queue(slug="technical-support", name="Technical Support")
    lead = make.user(roles=["technical_support"], queues=[q], name="Lia Lead", email="lead@example.com")
    agent = make.user(roles=["technical_support"], queues=[q], name="Adi Agent", email="agent@example.com",
                      locale="en")
    manager = make.user(roles=["admin"], name="Maya Manager", email="manager@example.com")
    q.lead_id = lead.id
    cust = make.customer()
    db.session.commit()
    return {"q": q.id, "lead": lead.id, "agent": agent.id, "manager": manager.id, "cust": cust.id}


def new_ticket(desk, now=START, assignee=None, subject="Hosting down"):
    t = services.create_ticket(customer_id=desk["cust"], subject=subject, body_text="Tolong", channel="web",
                               queue_id=desk["q"], now=now)
    if assignee:
        t.assignee_id = assignee
    db.session.commit()
    return t.id


def clock(ticket_id, target="first_response"):
    return db.session.execute(select(SlaClock).where(SlaClock.ticket_id == ticket_id, SlaClock.target == target)
                              .order_by(SlaClock.id.desc()).limit(1)).scalar_one()


def alerts():
    return db.session.execute(select(SlaAlert.clock_id, SlaAlert.kind, SlaAlert.sent_at).order_by(SlaAlert.id)).all()


def alert_jobs():
    return db.session.execute(select(OutboxJob).where(OutboxJob.func == sla_jobs.SEND_JOB)
                              .order_by(OutboxJob.id)).scalars().all()


def mails(kind):
    return db.session.execute(select(OutboundMail).where(OutboundMail.kind == kind)
                              .order_by(OutboundMail.id)).scalars().all()


def notes(kind=None):
    q = select(Notification).order_by(Notification.id)
    if kind:
        q = q.where(Notification.kind == kind)
    return db.session.execute(q).scalars().all()


def escalations(ticket_id):
    return db.session.execute(select(AuditEvent.old_value, AuditEvent.new_value, AuditEvent.note,
                                     AuditEvent.actor_user_id)
                              .where(AuditEvent.ticket_id == ticket_id, AuditEvent.action == "sla_escalation")
                              .order_by(AuditEvent.id)).all()


def policy():
    return db.session.execute(select(SlaPolicy).where(SlaPolicy.is_default.is_(True))).scalar_one()


def run(run_jobs):
    with mail.record_messages() as sent:
        run_jobs()
    return sent


# ---------------------------------------------------------------- warning and breach at the right minute

def test_warning_at_the_right_minute_goes_to_the_queue_lead_of_an_unassigned_ticket(app, desk, run_jobs):
    tid = new_ticket(desk)
    fr = clock(tid)
    assert (fr.warn_at, fr.due_at, fr.alert_at) == (FR_WARN, FR_DUE, FR_WARN)

    assert sla_jobs.sweep(FR_WARN - MINUTE)["claimed"] == 0
    assert alerts() == [] and alert_jobs() == []

    stats = sla_jobs.sweep(FR_WARN)
    assert stats["claimed"] == 1 and stats["jobs"] == 1 and stats["lag_seconds"] == 0
    fr = clock(tid)
    assert alerts() == [(fr.id, "warning", None)]
    assert (fr.warned_at, fr.alert_at, fr.breached_at) == (FR_WARN, FR_DUE, None)
    [job] = alert_jobs()
    assert job.queue == "sla" and job.args == [[db.session.execute(select(SlaAlert.id)).scalar_one()]]

    sent = run(run_jobs)
    [row] = mails("sla_warning")
    assert row.to_addrs == ["lead@example.com"] and row.user_id == desk["lead"] and row.status == "sent"
    assert row.locale == "id" and row.automatic
    [msg] = [m for m in sent if m.subject == row.subject]
    assert "Senin, 7 Desember 2026, 13.00 WIB" in msg.body and "respons pertama" in msg.body
    assert "Peringatan SLA" in row.subject
    [note] = notes("sla_warning")
    assert note.user_id == desk["lead"] and note.ticket_id == tid and "13.00 WIB" in note.body
    assert alerts()[0].sent_at is not None
    assert mails("sla_breach") == []


def test_breach_at_the_right_minute_goes_to_the_assignee_in_their_language(app, desk, run_jobs):
    tid = new_ticket(desk, assignee=desk["agent"])
    sla_jobs.sweep(FR_WARN)
    assert sla_jobs.sweep(FR_DUE - MINUTE)["claimed"] == 0
    assert [a.kind for a in alerts()] == ["warning"]

    stats = sla_jobs.sweep(FR_DUE + timedelta(seconds=30))
    assert stats["claimed"] == 1 and stats["lag_seconds"] == 30
    fr = clock(tid)
    assert [a.kind for a in alerts()] == ["warning", "breach"]
    assert fr.breached_at == FR_DUE + timedelta(seconds=30) and fr.alert_at is None

    sent = run(run_jobs)
    [breach] = mails("sla_breach")
    assert breach.to_addrs == ["agent@example.com"] and breach.locale == "en"
    assert "SLA breached" in breach.subject
    [msg] = [m for m in sent if m.subject == breach.subject]
    assert "Monday, 7 December 2026, 13:00 WIB" in msg.body and "first response" in msg.body
    assert [n.user_id for n in notes("sla_breach")] == [desk["agent"]]
    assert [m.to_addrs for m in mails("sla_warning")] == [["agent@example.com"]]
    assert all(a.sent_at is not None for a in alerts())
    # the default policy escalates nothing
    t = db.session.get(Ticket, tid)
    assert (t.priority, t.assignee_id, escalations(tid)) == ("normal", desk["agent"], [])


def test_a_warning_whose_deadline_has_passed_too_is_skipped_for_the_breach(app, desk):
    tid = new_ticket(desk)
    assert sla_jobs.sweep(FR_DUE)["claimed"] == 1
    fr = clock(tid)
    assert alerts() == [(fr.id, "breach", None)]
    assert fr.warned_at is None and fr.breached_at == FR_DUE and fr.alert_at is None


def test_an_answered_ticket_gets_no_alert_mail(app, desk, run_jobs):
    tid = new_ticket(desk, assignee=desk["agent"])
    sla_jobs.sweep(FR_WARN)
    services.add_agent_message(tid, desk["agent"], body_text="Kami cek", now=FR_WARN + MINUTE)
    db.session.commit()
    assert clock(tid).state == "met"
    run(run_jobs)
    assert mails("sla_warning") == [] and notes() == []
    assert alerts()[0].sent_at is not None


# ---------------------------------------------------------------- escalation

def test_breach_escalates_priority_to_the_lead_and_notifies_the_manager(app, desk, run_jobs):
    p = policy()
    p.escalate_priority, p.escalate_to_lead, p.escalate_notify_user_id = True, True, desk["manager"]
    db.session.commit()
    tid = new_ticket(desk, assignee=desk["agent"])
    assert clock(tid, "resolution").target_minutes == 1620
    sla_jobs.sweep(FR_DUE)
    run(run_jobs)

    t = db.session.get(Ticket, tid)
    assert t.priority == "high" and t.assignee_id == desk["lead"]
    # the clocks were recomputed for the new priority (resolution: 480 business minutes for high)
    assert clock(tid, "resolution").target_minutes == 480
    assert t.resolution_due == START + timedelta(hours=8)
    assert clock(tid).alert_at is None  # the breached first response has nothing more to say
    ev = escalations(tid)
    assert [(e.old_value, e.new_value) for e in ev] == [("normal", "high"), ("Adi Agent", "Lia Lead"),
                                                         (None, "Maya Manager")]
    assert all(e.actor_user_id is None for e in ev)
    assert "priority raised" in ev[0].note and "queue lead" in ev[1].note and "manager" in ev[2].note
    # the assignee at the breach got the breach; the lead and the manager were told of the escalation
    assert [m.to_addrs for m in mails("sla_breach")] == [["agent@example.com"]]
    [esc] = mails("sla_escalation")
    assert esc.to_addrs == ["manager@example.com"] and esc.status == "sent"
    assert {n.user_id for n in notes("sla_escalation")} == {desk["lead"], desk["manager"]}

    # the same alert job again (a duplicate push): nothing escalates twice
    [job] = alert_jobs()
    jobs.enqueue(sla_jobs.SEND_JOB, list(job.args[0]), queue="sla")
    db.session.commit()
    run(run_jobs)
    t = db.session.get(Ticket, tid)
    assert t.priority == "high" and len(escalations(tid)) == 3 and len(mails("sla_escalation")) == 1


def test_priority_escalation_stops_at_urgent_and_lead_step_skips_the_lead_itself(app, desk, run_jobs):
    p = policy()
    p.escalate_priority, p.escalate_to_lead = True, True
    db.session.commit()
    tid = new_ticket(desk, assignee=desk["lead"])
    t = db.session.get(Ticket, tid)
    services.change_priority(tid, desk["lead"], "urgent", now=START)
    db.session.commit()
    sla_jobs.sweep(START + timedelta(minutes=30))  # urgent first response: 30 minutes
    run(run_jobs)
    t = db.session.get(Ticket, tid)
    assert (t.priority, t.assignee_id, escalations(tid)) == ("urgent", desk["lead"], [])
    assert [m.to_addrs for m in mails("sla_breach")] == [["lead@example.com"]]


# ---------------------------------------------------------------- exactly once

def test_sweeping_twice_and_running_the_job_twice_makes_no_duplicates(app, desk, run_jobs):
    for i in range(3):
        new_ticket(desk, subject=f"t{i}")
    assert sla_jobs.sweep(FR_WARN)["claimed"] == 3
    assert sla_jobs.sweep(FR_WARN)["claimed"] == 0
    assert len(alerts()) == 3 and len(alert_jobs()) == 1
    [job] = alert_jobs()
    job_id, alert_ids = job.id, job.args[0]
    run(run_jobs)
    assert len(mails("sla_warning")) == 3 and len(notes("sla_warning")) == 3
    assert sla_jobs.send_alerts(alert_ids) == 0  # the job body again: every alert is sent already
    db.session.commit()
    jobs.get_queue("sla").enqueue("helpdesk.jobs.execute", job_id)  # the same outbox job delivered again
    run(run_jobs)
    assert len(mails("sla_warning")) == 3 and len(notes("sla_warning")) == 3


def test_batches_and_chunks(app, desk):
    for i in range(5):
        new_ticket(desk, subject=f"t{i}")
    stats = sla_jobs.sweep(FR_WARN, batch=2, chunk=1)
    assert stats["claimed"] == 5 and stats["batches"] == 3 and stats["claim_statements"] == 3
    assert sorted(len(j.args[0]) for j in alert_jobs()) == [1] * 5
    assert sorted(a for j in alert_jobs() for a in j.args[0]) == sorted(
        db.session.execute(select(SlaAlert.id)).scalars())


def test_a_sweep_that_stopped_after_its_claim_is_finished_without_a_second_alert(app, desk):
    ids = [new_ticket(desk, subject=f"t{i}") for i in range(3)]
    # as if a sweep had claimed (and committed) the warnings, then died before advancing the clocks
    due = db.session.execute(sla_jobs.due_query(FR_WARN)).all()
    assert len(due) == 3
    for r in due:
        db.session.add(SlaAlert(clock_id=r.id, ticket_id=db.session.get(SlaClock, r.id).ticket_id, kind=r.kind,
                                created_at=FR_WARN))
    db.session.commit()

    stats = sla_jobs.sweep(FR_WARN + MINUTE)
    assert stats["claimed"] == 0 and stats["advanced"] == 3 and stats["jobs"] == 0
    assert len(alerts()) == 3 and alert_jobs() == []
    for tid in ids:
        fr = clock(tid)
        assert fr.warned_at == FR_WARN + MINUTE and fr.alert_at == FR_DUE
    assert db.session.execute(sla_jobs.due_query(FR_WARN + MINUTE)).all() == []
    # and the breach later is claimed normally
    assert sla_jobs.sweep(FR_DUE)["claimed"] == 3


def _sweep_in_a_process(config, now, barrier, results):
    """A separate process with its own app: sweep at `now`, lined up with the other one by the barrier."""
    try:
        from config import TestConfig
        from helpdesk import create_app
        from helpdesk.extensions import db as _db
        from helpdesk.sla.jobs import sweep

        app = create_app(TestConfig(**config))
        with app.app_context():
            tried = []

            def before_claim():
                barrier.wait(timeout=60)
                tried.append(1)

            stats = sweep(now, before_claim=before_claim)
            _db.session.remove()
            _db.engine.dispose()
        results.put({"ok": True, "claimed": stats["claimed"], "claim_statements": stats["claim_statements"],
                     "tried": len(tried)})
    except Exception:
        results.put({"ok": False, "error": traceback.format_exc()})


def test_two_sweeps_in_two_processes_claim_each_alert_once(app, desk, database_url, redis_url, tmp_root):
    from tests.conftest import make_config

    n = 20
    for i in range(n):
        new_ticket(desk, subject=f"t{i}")
    cfg = make_config(database_url, redis_url, tmp_root)
    config = {k: getattr(cfg, k) for k in ("SQLALCHEMY_DATABASE_URI", "REDIS_URL", "INSTANCE_PATH",
                                            "ATTACHMENT_DIR", "RAW_MAIL_DIR")}
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_sweep_in_a_process, args=(config, FR_WARN, barrier, results)) for _ in range(2)]
    for p in procs:
        p.start()
    out = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert all(o["ok"] for o in out), [o.get("error") for o in out]
    # both reached the claim statement at the same moment, and both executed it
    assert [o["tried"] for o in out] == [1, 1] and [o["claim_statements"] for o in out] == [1, 1]
    assert sum(o["claimed"] for o in out) == n
    db.session.expire_all()
    rows = db.session.execute(select(SlaAlert.clock_id, SlaAlert.kind, func.count())
                              .group_by(SlaAlert.clock_id, SlaAlert.kind)).all()
    assert len(rows) == n and all(r[1] == "warning" and r[2] == 1 for r in rows)
    queued = [a for j in alert_jobs() for a in j.args[0]]
    assert sorted(queued) == sorted(db.session.execute(select(SlaAlert.id)).scalars())
    assert db.session.execute(select(func.count()).select_from(SweepRun)).scalar() == 2
    assert db.session.execute(sla_jobs.due_query(FR_WARN)).all() == []


# ---------------------------------------------------------------- the query, the cron entry

def test_the_due_query_uses_the_partial_index(app):
    sql = sla_jobs.due_query(FR_WARN).compile(db.engine, compile_kwargs={"literal_binds": True})
    if db.engine.dialect.name == "sqlite":  # SQLite takes a partial index only when the query repeats its predicate
        plan = " ".join(str(r[-1]) for r in db.session.execute(text(f"EXPLAIN QUERY PLAN {sql}")))
        assert "ix_sla_clocks_alert_at" in plan and "SCAN sla_clocks" not in plan.replace("USING INDEX", "")
    else:  # an empty table is scanned anyway: ask whether the index can serve the query at all
        db.session.execute(text("SET LOCAL enable_seqscan = off"))
        plan = " ".join(r[0] for r in db.session.execute(text(f"EXPLAIN {sql}")))
        db.session.rollback()
        assert "ix_sla_clocks_alert_at" in plan


def test_rq_cron_runs_the_sweep_on_the_sla_queue(app, desk, run_jobs):
    cron = CronScheduler(connection=jobs.get_redis())
    cron.load_config_from_file("workers/cron.py")
    entries = {j.func_name: (j.queue_name, j.interval) for j in cron.get_jobs()}
    assert entries["helpdesk.sla.jobs.cron_sla_sweep"] == ("sla", 60)
    tid = new_ticket(desk)
    # the worker and the sweep read the clock: travel to 12:00:20 WIB, just after the warning time
    with time_machine.travel((FR_WARN + timedelta(seconds=20)).replace(tzinfo=timezone.utc), tick=True):
        jobs.get_queue("sla").enqueue(sla_jobs.cron_sla_sweep)  # what rq cron does every minute
        run(run_jobs)
    assert [a.kind for a in alerts()] == ["warning"] and alerts()[0].sent_at is not None
    assert [m.to_addrs for m in mails("sla_warning")] == [["lead@example.com"]]
    run_row = db.session.execute(select(SweepRun)).scalar_one()
    assert run_row.claimed == 1 and 19 <= run_row.lag_seconds < 120
    assert clock(tid).warned_at is not None


# ---------------------------------------------------------------- worker health

def test_sweep_health(app, desk):
    now = FR_WARN
    h = sla_jobs.sweep_health(now)
    assert h["ok"] is False and h["problem"] == "never" and h["policies"] == 1
    new_ticket(desk)
    sla_jobs.sweep(now)
    h = sla_jobs.sweep_health(now + MINUTE)
    assert h["ok"] is True and h["problem"] is None and h["claimed"] == 1 and h["last_sweep_at"] >= now
    assert sla_jobs.sweep_health(now + timedelta(minutes=4, seconds=50))["ok"] is True
    late = sla_jobs.sweep_health(now + timedelta(minutes=6))
    assert late["ok"] is False and late["problem"] == "stale" and "6 minutes" in late["message"]
    # the breach due at 13:00 and not swept by 13:06 is counted as overdue
    assert sla_jobs.sweep_health(FR_DUE + timedelta(minutes=6))["overdue"] == 1


def test_no_policy_and_no_sweep_is_no_problem(app):
    db.session.execute(SlaPolicy.__table__.delete())
    db.session.commit()
    assert sla_jobs.sweep_health()["ok"] is True


def test_jobs_status_command_shows_the_sla_sweep(app, desk):
    runner = app.test_cli_runner()
    out = runner.invoke(args=["jobs", "status"]).output
    assert "sla sweep: never ran" in out and "problem: no SLA sweep has ever run" in out
    with time_machine.travel(datetime.now(timezone.utc) - timedelta(minutes=7), tick=False):
        sla_jobs.sweep()
    out = runner.invoke(args=["jobs", "status"]).output
    assert "sla sweep: last " in out and "problem: the last SLA sweep ran 7 minutes ago" in out
    sla_jobs.sweep()
    out = runner.invoke(args=["jobs", "status"]).output
    assert "sla sweep: last " in out and "problem:" not in out


def test_admin_jobs_page_shows_the_sla_sweep(app, desk, make, client):
    admin = make.user(roles=["admin"])
    db.session.commit()
    assert client.post("/login", data={"email": admin.email, "password": PASSWORD}).status_code == 302
    page = client.get("/admin/jobs").get_data(as_text=True)
    assert "SLA sweep" in page and "no sweep has run" in page
    with time_machine.travel(datetime.now(timezone.utc) - timedelta(minutes=6), tick=False):
        sla_jobs.sweep()
    page = client.get("/admin/jobs").get_data(as_text=True)
    assert "No SLA sweep for more than 5 minutes" in page
    sla_jobs.sweep()
    page = client.get("/admin/jobs").get_data(as_text=True)
    assert "Last sweep:" in page and "No SLA sweep for more than 5 minutes" not in page
