"""Outages in the middle of the mail flow, each on a PRIVATE server of the test (never the shared ones):

- SMTP down, then up on the same port: the jobs fail and stay retryable; once it is back every mail
  is delivered exactly once (counted by Message-ID at the server).
- Redis down while a customer sends the web form: the ticket is saved, and its acknowledgement is
  sent once Redis is back (the outbox sweep pushes the job).
"""
from datetime import datetime, timedelta, timezone

from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from helpdesk import jobs
from helpdesk.extensions import db
from helpdesk.jobs import OutboxJob
from helpdesk.mail import outbound
from helpdesk.mail.models import OutboundMail
from helpdesk.tickets import services
from helpdesk.tickets.models import Ticket
from tests.factories import Factories
from tests.integration.test_jobs import PrivateRedis
from tests.conftest import work_jobs as work
from tests.smtp_server import private_smtp, shared_smtp, smtp_server  # noqa: F401  (fixtures)



def bring_retries_forward():
    """Make the scheduled retries due now instead of waiting for their backoff."""
    registry = ScheduledJobRegistry(queue=jobs.get_queue("mail"))
    ids = registry.get_job_ids()
    for job_id in ids:
        registry.schedule(Job.fetch(job_id, connection=jobs.get_redis()),
                          datetime.now(timezone.utc) - timedelta(seconds=1))
    return len(ids)


def acknowledged_tickets(make, queue_id, n, start=0):
    ids = []
    for i in range(start, start + n):
        cust = make.customer(name=f"Pelanggan {i}", email=f"pelanggan{i}@example.com", language="id")
        t = services.create_ticket(customer_id=cust.id, subject=f"Permintaan {i}", body_text="Tolong dibantu.",
                                   channel="email", queue_id=queue_id)
        db.session.flush()
        outbound.queue_acknowledgement(t.id)
        ids.append(t.id)
    db.session.commit()
    return ids


def test_smtp_down_then_up_every_mail_delivered_exactly_once(app_factory, private_smtp):
    app = app_factory(**private_smtp.mail_config())
    with app.app_context():
        make = Factories()
        queue = make.queue(slug="customer-support", name="Customer Support")  # no members: acks only
        db.session.commit()
        queue_id = queue.id
        acknowledged_tickets(make, queue_id, 2)
        work()
        assert len(private_smtp.messages) == 2

        private_smtp.stop()  # the outage begins with mail in flight
        acknowledged_tickets(make, queue_id, 4, start=2)
        work()
        rows = db.session.execute(select(OutboundMail).order_by(OutboundMail.id)).scalars().all()
        assert [r.status for r in rows] == ["sent"] * 2 + ["queued"] * 4
        failing = rows[2:]
        assert all(r.attempts == 1 and "Connection refused" in r.last_error for r in failing)
        pending = db.session.execute(select(OutboxJob).where(OutboxJob.done_at.is_(None))).scalars().all()
        assert len(pending) == 4 and all(j.attempts == 1 and j.last_error for j in pending)
        for j in pending:
            assert Job.fetch(jobs.rq_job_id(j.id), connection=jobs.get_redis()).get_status() == JobStatus.SCHEDULED
        assert bring_retries_forward() == 4
        work(with_scheduler=True)  # the second attempt: still down
        assert [r.attempts for r in db.session.execute(select(OutboundMail).order_by(OutboundMail.id)).scalars()] \
            == [1, 1, 2, 2, 2, 2]
        assert len(private_smtp.messages) == 2

        private_smtp.start()  # back, on the same port
        assert bring_retries_forward() == 4
        work(with_scheduler=True)
        jobs.sweep_outbox()
        work(with_scheduler=True)

        rows = db.session.execute(select(OutboundMail).order_by(OutboundMail.id)).scalars().all()
        assert [r.status for r in rows] == ["sent"] * 6
        received = private_smtp.by_message_id()
        assert received == {r.message_id: 1 for r in rows}  # each exactly once, nothing else
        assert sorted(m.rcpt_tos[0] for m in private_smtp.messages) == [f"pelanggan{i}@example.com" for i in range(6)]
        assert db.session.execute(select(OutboxJob).where(OutboxJob.done_at.is_(None))).scalars().all() == []


def test_redis_down_while_a_web_ticket_is_created_then_acknowledged_once(app_factory, smtp_server, tmp_path):
    redis = PrivateRedis(tmp_path / "private-redis").start()
    try:
        app = app_factory(REDIS_URL=redis.url, **smtp_server.mail_config())
        with app.app_context():
            Factories().queue(slug="technical-support", name="Technical Support")
            db.session.commit()
            redis.kill()
            resp = app.test_client().post("/form", data={
                "name": "Wahyu", "email": "wahyu@bengkelwahyu.co.id", "topic": "website",
                "subject": "Website bengkel error", "message": "Halaman booking tidak bisa dibuka."})
            assert resp.status_code == 303
            db.session.remove()
            ticket = db.session.execute(select(Ticket)).scalar_one()
            assert ticket.subject == "Website bengkel error"
            ack = db.session.execute(select(OutboundMail).where(OutboundMail.kind == "ack")).scalar_one()
            assert ack.status == "queued" and ack.to_addrs == ["wahyu@bengkelwahyu.co.id"]
            mid, ack_id, number = ack.message_id, ack.id, ticket.number
            assert [(j.func, j.pushed_at) for j in db.session.execute(select(OutboxJob)).scalars()] == \
                [("helpdesk.mail.jobs.send_outbound", None)]
            assert jobs.sweep_outbox() == 0  # still down: nothing pushed, no error
            assert smtp_server.messages == []

            redis.start()  # a new, empty Redis on the same address
            assert jobs.sweep_outbox() == 1
            work()
            assert jobs.sweep_outbox() == 0
            work()
            [got] = smtp_server.to("wahyu@bengkelwahyu.co.id")
            assert got.message_id == mid and f"[#{number}]" in got["Subject"]
            assert smtp_server.by_message_id() == {mid: 1}
            assert db.session.get(OutboundMail, ack_id).status == "sent"
    finally:
        redis.stop()
