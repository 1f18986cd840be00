"""Follow-up reminders of lead tasks (issue #7 §1): the sweep (helpdesk.leads.jobs.sweep) reminds the
owner of a due, undone task exactly once (a bell notification and a mail), also when two sweeps run
at once; the mail (kind lead_reminder) arrives at a real SMTP server (tests/smtp_server.py) in the
owner's language with the lead's details and the link to the lead."""
from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest
from rq.cron import CronScheduler
from sqlalchemy import func, select, text

from helpdesk import jobs
from helpdesk.extensions import db
from helpdesk.jobs import OutboxJob
from helpdesk.leads import jobs as lead_jobs
from helpdesk.leads import services as leads
from helpdesk.leads.models import LeadTask
from helpdesk.mail.models import OutboundMail
from helpdesk.sla.models import Notification
from tests.concurrency import at_once
from tests.smtp_server import shared_smtp, smtp_server  # noqa: F401  (fixtures)

DUE = datetime(2026, 12, 1, 3, 0)  # Tuesday 1 December 2026, 10:00 WIB (naive UTC)
MINUTE = timedelta(minutes=1)
BASE_URL = "https://desk.example"
SEND_JOB = "helpdesk.mail.jobs.send_outbound"


@pytest.fixture
def app(app_factory, smtp_server):
    """This module's app sends its mail to the test SMTP server (`make` and `run_jobs` use it)."""
    app = app_factory(BASE_URL=BASE_URL, **smtp_server.mail_config())
    with app.app_context():
        yield app
        db.session.remove()


@pytest.fixture
def desk(make):
    users = SimpleNamespace(
        maya=make.user(email="maya@desk.example", name="Maya", roles=["marketing"]),  # default language: id
        john=make.user(email="john@desk.example", name="John", roles=["marketing"], locale="en"),
        gone=make.user(email="gone@desk.example", name="Gone", roles=["marketing"]),
    )
    db.session.commit()
    return users


def new_lead(owner, **kw):
    fields = dict(name="Budi Santoso", email="budi@example.com", phone="0812-3456-7890", company="CV Maju Jaya",
                  source="seminar", owner_id=owner.id, now=DUE - timedelta(days=1))
    fields.update(kw)
    lead, _ = leads.capture(**fields)
    db.session.commit()
    return lead


def new_task(lead, owner, title="Send the offer", due=DUE):
    task = leads.add_task(lead.id, owner.id, title, due, owner_id=owner.id, now=DUE - timedelta(days=1))
    assert task.owner_id == owner.id
    db.session.commit()
    return task


def count(model, *where):
    return db.session.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def reminder_mails():
    return db.session.execute(select(OutboundMail).where(OutboundMail.kind == "lead_reminder")
                              .order_by(OutboundMail.id)).scalars().all()


def send_jobs():
    return db.session.execute(select(OutboxJob).where(OutboxJob.func == SEND_JOB).order_by(OutboxJob.id)).scalars().all()


def task(task_id):
    db.session.expire_all()
    return db.session.get(LeadTask, task_id)


# ---------------------------------------------------------------- the sweep

def test_a_task_due_later_is_not_reminded(desk):
    t = new_task(new_lead(desk.maya), desk.maya)
    stats = lead_jobs.sweep(DUE - MINUTE)
    assert stats["reminded"] == 0
    assert task(t.id).reminded_at is None
    assert count(Notification) == 0 and reminder_mails() == [] and send_jobs() == []


def test_a_due_task_is_reminded_once(desk):
    lead = new_lead(desk.maya)
    t = new_task(lead, desk.maya)
    now = DUE + MINUTE
    stats = lead_jobs.sweep(now)
    assert stats["reminded"] == 1
    assert task(t.id).reminded_at == now
    [note] = db.session.execute(select(Notification)).scalars().all()
    assert (note.user_id, note.ticket_id, note.kind, note.created_at) == (desk.maya.id, None, "lead_task", now)
    assert "Send the offer" in note.body and "Budi Santoso" in note.body
    [mail] = reminder_mails()
    assert mail.to_addrs == ["maya@desk.example"] and mail.user_id == desk.maya.id and mail.ticket_id is None
    assert mail.status == "queued" and mail.automatic and mail.locale == "id"
    assert mail.subject == "Tindak lanjut jatuh tempo: Send the offer"
    [job] = send_jobs()
    assert job.queue == "mail" and job.args == [mail.id, {"task_id": t.id, "lead_id": lead.id}]

    # a second sweep (now or later) finds nothing to do
    for later in (now, now + timedelta(hours=1)):
        assert lead_jobs.sweep(later)["reminded"] == 0
    assert task(t.id).reminded_at == now
    assert count(Notification) == 1 and len(reminder_mails()) == 1 and len(send_jobs()) == 1


def test_a_done_task_is_never_reminded(desk):
    lead = new_lead(desk.maya)
    t = new_task(lead, desk.maya)
    leads.complete_task(t.id, desk.maya.id, now=DUE - MINUTE)
    db.session.commit()
    assert lead_jobs.sweep(DUE + timedelta(days=3))["reminded"] == 0
    stored = task(t.id)
    assert stored.reminded_at is None and stored.done_at == DUE - MINUTE
    assert count(Notification) == 0 and reminder_mails() == []


def test_an_inactive_owner_gets_nothing_but_the_task_is_claimed(desk):
    """The task is marked reminded all the same (claimed by the sweep), so it is not tried again
    every minute; the owner, no longer active, gets neither a notification nor a mail."""
    lead = new_lead(desk.maya)
    t = new_task(lead, desk.gone)
    desk.gone.active = False
    db.session.commit()
    stats = lead_jobs.sweep(DUE)
    assert stats["reminded"] == 0
    assert task(t.id).reminded_at == DUE
    assert count(Notification) == 0 and reminder_mails() == [] and send_jobs() == []
    assert lead_jobs.sweep(DUE + MINUTE)["reminded"] == 0 and count(Notification) == 0


def test_only_the_due_tasks_of_a_sweep_are_reminded_each_to_its_owner(desk):
    lead = new_lead(desk.maya)
    other = new_lead(desk.john, name="Sari", email="sari@example.com", phone="0813-1111-2222", company=None)
    a = new_task(lead, desk.maya, "Call back", DUE - timedelta(hours=1))
    b = new_task(other, desk.john, "Send the quote", DUE)
    c = new_task(other, desk.john, "Visit", DUE + timedelta(hours=1))
    assert lead_jobs.sweep(DUE)["reminded"] == 2
    assert [task(x.id).reminded_at for x in (a, b, c)] == [DUE, DUE, None]
    assert sorted((m.to_addrs[0], m.subject) for m in reminder_mails()) == [
        ("john@desk.example", "Follow-up due: Send the quote"),
        ("maya@desk.example", "Tindak lanjut jatuh tempo: Call back")]
    assert lead_jobs.sweep(DUE + timedelta(hours=1))["reminded"] == 1
    assert task(c.id).reminded_at == DUE + timedelta(hours=1)


def test_two_sweeps_at_once_remind_each_task_exactly_once(app, desk):
    """Two threads, each with its own app context, session and connection, lined up by a barrier:
    the conditional claim (reminded_at IS NULL ... RETURNING) gives each task to one of them."""
    lead = new_lead(desk.maya)
    other = new_lead(desk.john, name="Sari", email="sari@example.com", phone="0813-1111-2222")
    tasks = [new_task(lead if i % 2 else other, desk.maya if i % 2 else desk.john, f"Follow-up {i}")
             for i in range(8)]

    def sweep_once():
        return lead_jobs.sweep(DUE + MINUTE)["reminded"]

    results = at_once(app, sweep_once, sweep_once)  # two workers at the same moment
    assert sorted(results)[1] >= 1 and sum(results) == len(tasks)
    db.session.expire_all()
    assert all(task(t.id).reminded_at == DUE + MINUTE for t in tasks)
    assert count(Notification) == len(tasks)
    mails = reminder_mails()
    assert len(mails) == len(tasks) and all(m.status == "queued" for m in mails)
    reminded = sorted(j.args[1]["task_id"] for j in send_jobs())
    assert reminded == sorted(t.id for t in tasks)  # every task once, none twice
    assert lead_jobs.sweep(DUE + 2 * MINUTE)["reminded"] == 0


# ---------------------------------------------------------------- the mail, as it arrives

def test_the_reminder_mail_arrives_in_the_owners_language_with_the_lead_and_its_link(desk, smtp_server, run_jobs):
    lead = new_lead(desk.maya)
    other = new_lead(desk.john, name="Sari Dewi", email="sari@example.com", phone="0813-1111-2222",
                     company="PT Sinar")
    leads.change_stage(other.id, desk.john.id, "offer_sent", now=DUE - timedelta(hours=5))
    db.session.commit()
    new_task(lead, desk.maya, "Kirim penawaran")
    new_task(other, desk.john, "Call about the quote")
    assert lead_jobs.sweep(DUE + MINUTE)["reminded"] == 2
    lead, other = SimpleNamespace(id=lead.id), SimpleNamespace(id=other.id)
    run_jobs()

    [maya] = smtp_server.to("maya@desk.example")
    assert maya.rcpt_tos == ["maya@desk.example"]
    assert maya["Subject"] == "Tindak lanjut jatuh tempo: Kirim penawaran"
    assert maya["Content-Language"] == "id" and maya["Auto-Submitted"] == "auto-generated"
    text = maya.text
    for expected in ("Budi Santoso", "CV Maju Jaya", "+6281234567890", "budi@example.com", "Tahap: baru",
                     "Selasa, 1 Desember 2026, 10.00 WIB", f"{BASE_URL}/leads/{lead.id}"):
        assert expected in text, expected
    assert f'href="{BASE_URL}/leads/{lead.id}"' in maya.html and "Budi Santoso" in maya.html

    [john] = smtp_server.to("john@desk.example")
    assert john.rcpt_tos == ["john@desk.example"]
    assert john["Subject"] == "Follow-up due: Call about the quote"
    assert john["Content-Language"] == "en"
    for expected in ("Sari Dewi", "PT Sinar", "+6281311112222", "sari@example.com", "Stage: offer sent",
                     "Tuesday, 1 December 2026, 10:00 WIB", f"{BASE_URL}/leads/{other.id}"):
        assert expected in john.text, expected
    assert "Budi Santoso" not in john.text
    assert f'href="{BASE_URL}/leads/{other.id}"' in john.html

    db.session.expire_all()
    assert [m.status for m in reminder_mails()] == ["sent", "sent"]
    run_jobs()  # nothing more to send
    assert len(smtp_server.messages) == 2


def test_the_mail_escapes_what_the_lead_brought(desk, smtp_server, run_jobs):
    lead = new_lead(desk.maya, name="<b>Budi</b>", company="CV <script>x</script>")
    new_task(lead, desk.maya, "Call <i>now</i>")
    lead_jobs.sweep(DUE)
    run_jobs()
    [got] = smtp_server.to("maya@desk.example")
    assert "<script>" not in got.html and "&lt;script&gt;" in got.html and "&lt;b&gt;Budi&lt;/b&gt;" in got.html
    assert "<b>Budi</b>" in got.text  # the plain text part says it as it is


def test_rq_cron_runs_the_reminder_sweep_every_minute(app):
    cron = CronScheduler(connection=jobs.get_redis())
    cron.load_config_from_file("workers/cron.py")
    entries = {j.func_name: (j.queue_name, j.interval) for j in cron.get_jobs()}
    assert entries["helpdesk.leads.jobs.cron_lead_reminders"] == ("default", 60)


def test_the_due_query_uses_the_partial_index(app):
    from helpdesk.leads.models import LeadTask as T

    query = (select(T.id).where(T.done_at.is_(None), T.reminded_at.is_(None), T.due_at <= DUE)
             .order_by(T.due_at, T.id).limit(500))
    # the sweep's own statement (helpdesk.leads.services.due_tasks) is this one
    assert str(query.compile(db.engine)) in str(_due_tasks_sql())
    sql = query.compile(db.engine, compile_kwargs={"literal_binds": True})
    if db.engine.dialect.name == "sqlite":
        plan = " ".join(str(r[-1]) for r in db.session.execute(text(f"EXPLAIN QUERY PLAN {sql}")))
        assert "ix_lead_tasks_due" in plan and "SCAN lead_tasks" not in plan.replace("USING INDEX", "")
    else:  # an empty table is scanned anyway: ask whether the index can serve the query at all
        db.session.execute(text("SET LOCAL enable_seqscan = off"))
        plan = " ".join(r[0] for r in db.session.execute(text(f"EXPLAIN {sql}")))
        db.session.rollback()
        assert "ix_lead_tasks_due" in plan


def _due_tasks_sql():
    """The SQL leads.due_tasks() runs, as sent to the database."""
    from sqlalchemy import event

    seen = []

    def grab(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", grab)
    try:
        leads.due_tasks(DUE)
    finally:
        event.remove(db.engine, "before_cursor_execute", grab)
    return "\n".join(seen)
