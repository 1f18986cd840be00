"""Ticket services and the desk pages, against the real database."""
import pytest
from sqlalchemy import select

from helpdesk.errors import Conflict, Forbidden, InvalidTransition
from helpdesk.extensions import db
from helpdesk.jobs import OutboxJob
from helpdesk.mail.models import OutboundMail
from helpdesk.tickets import counts, services
from helpdesk.tickets.models import AuditEvent, Message, Ticket


@pytest.fixture
def desk(make):
    q = make.queue(slug="technical-support", name="Technical Support")
    billing_q = make.queue(slug="billing", name="Billing")
    agent = make.user(roles=["technical_support"], queues=[q])
    biller = make.user(roles=["billing"], queues=[billing_q, q])
    cust = make.customer()
    db.session.commit()
    return {"q": q, "billing_q": billing_q, "agent": agent, "biller": biller, "cust": cust}


def test_numbers_are_sequential_and_unique(app, make, desk):
    numbers = [make.ticket(queue=desk["q"], customer=desk["cust"]).number for _ in range(5)]
    assert numbers == list(range(numbers[0], numbers[0] + 5))


def test_the_created_event_is_dated_when_the_ticket_was_created(app, make, desk):
    """A ticket entered with an earlier time (a phone call written down later, imported mail) has
    its "created" event at that time, as its first message."""
    from datetime import timedelta

    from helpdesk.timeutil import utcnow

    then = utcnow().replace(microsecond=0) - timedelta(hours=2)
    t = make.ticket(queue=desk["q"], customer=desk["cust"], now=then)
    db.session.commit()
    created = db.session.execute(select(AuditEvent).where(AuditEvent.ticket_id == t.id,
                                                          AuditEvent.action == "created")).scalar_one()
    assert created.created_at == then == t.created_at


def test_create_writes_first_message_preview_audit_and_outbox(app, make, desk):
    t = make.ticket(queue=desk["q"], customer=desk["cust"], body="Situs kami error 500 sejak pagi")
    db.session.commit()
    assert t.status == "new" and t.message_count == 1
    assert t.last_message_preview == "Situs kami error 500 sejak pagi"
    assert db.session.execute(select(AuditEvent.action).where(AuditEvent.ticket_id == t.id)).scalars().all() == ["created"]
    # one notification per agent of the queue, each an OutboundMail row with its own "mail" job
    notified = db.session.execute(select(OutboundMail.kind, OutboundMail.to_addrs).order_by(OutboundMail.id)).all()
    assert notified == [("notify_new", [desk["agent"].email]), ("notify_new", [desk["biller"].email])]
    assert db.session.execute(select(OutboxJob.func, OutboxJob.queue)).all() == \
        [("helpdesk.mail.jobs.send_outbound", "mail")] * 2


def test_agent_reply_sets_first_response_and_opens(app, make, desk):
    t = make.ticket(queue=desk["q"], customer=desk["cust"])
    services.add_agent_message(t.id, desk["agent"].id, body_text="Kami cek ya")
    db.session.commit()
    assert t.status == "open" and t.first_response_at is not None and t.last_agent_message_at is not None


def test_customer_reply_rules(app, make, desk):
    agent = desk["agent"]
    t = make.ticket(queue=desk["q"], customer=desk["cust"])
    services.change_status(t.id, agent.id, "pending_customer")
    services.add_customer_message(t.id, desk["cust"].id, body_text="Sudah saya coba")
    assert t.status == "open"
    assert db.session.execute(select(AuditEvent.note).where(AuditEvent.ticket_id == t.id, AuditEvent.action == "status")
                              .order_by(AuditEvent.id.desc())).scalars().first() == "resume"
    services.change_status(t.id, agent.id, "resolved")
    services.add_customer_message(t.id, desk["cust"].id, body_text="Masih error")
    assert t.status == "open"
    services.change_status(t.id, agent.id, "pending_billing")
    services.add_customer_message(t.id, desk["cust"].id, body_text="Sudah transfer")
    assert t.status == "pending_billing" and t.customer_replied
    services.change_status(t.id, desk["biller"].id, "closed")
    new, msg = services.add_customer_message(t.id, desk["cust"].id, body_text="Error lagi")
    db.session.commit()
    assert new.id != t.id and new.linked_ticket_id == t.id and t.status == "closed"
    assert msg.ticket_id == new.id


def test_illegal_transition_and_billing_role(app, make, desk):
    t = make.ticket(queue=desk["q"], customer=desk["cust"])
    services.change_status(t.id, desk["agent"].id, "closed")
    with pytest.raises(InvalidTransition):
        services.change_status(t.id, desk["agent"].id, "open")
    t2 = make.ticket(queue=desk["q"], customer=desk["cust"])
    services.change_status(t2.id, desk["agent"].id, "pending_billing")
    with pytest.raises(Forbidden):
        services.change_status(t2.id, desk["agent"].id, "open")
    services.change_status(t2.id, desk["biller"].id, "open")
    assert t2.status == "open"


def test_conflict_warning_when_someone_else_wrote(app, make, desk):
    t = make.ticket(queue=desk["q"], customer=desk["cust"])
    first = db.session.execute(select(Message.id).where(Message.ticket_id == t.id)).scalar()
    services.add_customer_message(t.id, desk["cust"].id, body_text="one more thing")
    with pytest.raises(Conflict):
        services.add_agent_message(t.id, desk["agent"].id, body_text="hi", seen_last_message_id=first)
    services.add_agent_message(t.id, desk["agent"].id, body_text="hi", seen_last_message_id=first, force=True)


def test_counts_follow_changes(app, make, desk):
    t = make.ticket(queue=desk["q"], customer=desk["cust"])
    services.assign(t.id, desk["agent"].id, desk["agent"].id)
    services.change_status(t.id, desk["agent"].id, "resolved")
    db.session.commit()
    c = counts.counts(db.session)
    assert c.get((desk["q"].id, "resolved", False)) == 1
    assert not c.get((desk["q"].id, "new", True))
    kept = dict(c)
    counts.rebuild(db.session)
    assert {k: v for k, v in counts.counts(db.session).items() if v} == {k: v for k, v in kept.items() if v}


def test_merge_moves_messages_and_redirects(app, make, desk, client, auth):
    a = make.ticket(queue=desk["q"], customer=desk["cust"], subject="A")
    b = make.ticket(queue=desk["q"], customer=desk["cust"], subject="B")
    services.merge(a.id, b.id, desk["agent"].id)
    db.session.commit()
    assert db.session.execute(select(Message).where(Message.ticket_id == b.id)).scalars().all().__len__() == 2
    auth.login(desk["agent"])
    r = client.get(f"/tickets/{a.number}")
    assert r.status_code == 301 and r.headers["Location"].endswith(f"/tickets/{b.number}")
    tk, _ = services.add_customer_message(a.id, desk["cust"].id, body_text="reply to old")
    assert tk.id == b.id


def test_desk_list_and_ticket_page(app, make, desk, client, auth):
    t = make.ticket(queue=desk["q"], customer=desk["cust"], subject="Domain expired")
    other_q = make.queue()
    hidden = make.ticket(queue=other_q, customer=desk["cust"], subject="Secret marketing")
    db.session.commit()
    auth.login(desk["agent"])
    page = client.get("/?view=all").get_data(as_text=True)
    assert "Domain expired" in page and "Secret marketing" not in page
    assert client.get(f"/tickets/{hidden.number}").status_code == 404
    r = client.post(f"/tickets/{t.number}/messages", data={"body": "Sudah kami perpanjang", "kind": "reply",
                                                             "status": "resolved"})
    assert r.status_code == 302
    page = client.get(f"/tickets/{t.number}").get_data(as_text=True)
    assert "Sudah kami perpanjang" in page and "Resolved" in page


def test_search_finds_message_text_number_and_email(app, make, desk, client, auth):
    t = make.ticket(queue=desk["q"], customer=desk["cust"], body="invoice INV-77821 belum masuk")
    make.ticket(queue=desk["q"], customer=desk["cust"], body="lain hal")
    db.session.commit()
    auth.login(desk["agent"])
    for q in ("INV-77821", str(t.number), desk["cust"].primary_email):
        page = client.get("/", query_string={"q": q, "status": "any"}).get_data(as_text=True)
        assert f"/tickets/{t.number}" in page, q


def test_billing_sees_pending_billing_tickets_and_customer_replied(app, make, desk, client, auth, run_jobs):
    from helpdesk.extensions import mail

    t = make.ticket(queue=desk["q"], customer=desk["cust"], subject="Perlu approval biaya")
    services.assign(t.id, desk["agent"].id, desk["agent"].id)
    services.change_status(t.id, desk["agent"].id, "pending_billing")
    only_billing = make.user(roles=["billing"], queues=[desk["billing_q"]])
    db.session.commit()
    tid, cid, billing_email = t.id, desk["cust"].id, only_billing.email
    emails = {desk["agent"].email, only_billing.email, desk["biller"].email}
    run_jobs()
    services.add_customer_message(tid, cid, body_text="Sudah saya transfer")
    db.session.commit()
    with mail.record_messages() as outbox:
        run_jobs()
    recipients = {r for m in outbox for r in m.recipients}
    assert emails <= recipients
    auth.login(billing_email)
    page = client.get("/?view=all").get_data(as_text=True)
    assert "Perlu approval biaya" in page and "customer replied" in page


def test_reply_mail_carries_a_signed_link_to_the_ticket(app, make, desk, client, run_jobs):
    from helpdesk.extensions import mail

    t = make.ticket(queue=desk["q"], customer=desk["cust"], subject="Domain belum aktif")
    services.add_agent_message(t.id, desk["agent"].id, body_text="Domain sudah aktif, silakan dicek.")
    db.session.commit()
    email = desk["cust"].primary_email
    with mail.record_messages() as outbox:
        run_jobs()
    reply = next(m for m in outbox if m.recipients == [email])
    link = reply.body.strip().splitlines()[-1]
    assert "/portal/t/" in link and "Domain sudah aktif" in reply.body
    page = client.get(link[link.index("/portal/"):])
    assert page.status_code == 200 and "Domain sudah aktif, silakan dicek." in page.get_data(as_text=True)
