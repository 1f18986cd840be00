"""The agent desk pages: queues, filters, paging, ticket actions, calls, bulk, attachments."""
import io
import re
from datetime import datetime

import pytest
from sqlalchemy import select

from helpdesk.extensions import db
from helpdesk.tickets import services
from helpdesk.tickets.models import Attachment, AuditEvent, CannedResponse, Message, Ticket


@pytest.fixture
def world(make):
    tech = make.queue(slug="technical-support", name="Technical Support")
    cs = make.queue(slug="customer-support", name="Customer Support")
    agent = make.user(roles=["technical_support"], queues=[tech], name="Bayu Pratama")
    other = make.user(roles=["technical_support"], queues=[tech], name="Tri Wahyuni")
    cs_agent = make.user(roles=["customer_support"], queues=[cs], name="Sari Wulandari")
    cust = make.customer(name="Budi Santoso")
    db.session.commit()
    return dict(tech=tech, cs=cs, agent=agent, other=other, cs_agent=cs_agent, cust=cust)


def numbers_on(page):
    return [int(n) for n in re.findall(r'href="/tickets/(\d+)">\1<', page)]


def test_views_mine_unassigned_queue(app, make, world, client, auth):
    mine = make.ticket(queue=world["tech"], customer=world["cust"], subject="Mine")
    services.assign(mine.id, world["agent"].id, world["agent"].id)
    free = make.ticket(queue=world["tech"], customer=world["cust"], subject="Free")
    cs_t = make.ticket(queue=world["cs"], customer=world["cust"], subject="CS only")
    db.session.commit()
    auth.login(world["agent"])
    assert numbers_on(client.get("/?view=mine").get_data(as_text=True)) == [mine.number]
    assert numbers_on(client.get("/?view=unassigned").get_data(as_text=True)) == [free.number]
    assert set(numbers_on(client.get("/?view=queue:technical-support").get_data(as_text=True))) == {mine.number, free.number}
    assert client.get("/?view=queue:customer-support").status_code == 404
    assert cs_t.number not in numbers_on(client.get("/?view=all").get_data(as_text=True))


def test_assigned_ticket_in_foreign_queue_is_visible_to_assignee(app, make, world, client, auth):
    t = make.ticket(queue=world["cs"], customer=world["cust"], subject="Escalated to Bayu")
    t.assignee_id = world["agent"].id
    db.session.commit()
    auth.login(world["agent"])
    assert client.get(f"/tickets/{t.number}").status_code == 200
    assert t.number in numbers_on(client.get("/?view=mine").get_data(as_text=True))


def test_filters_and_sorting(app, make, world, client, auth):
    a = make.ticket(queue=world["tech"], customer=world["cust"], subject="Urgent one", priority="urgent", channel="phone")
    b = make.ticket(queue=world["tech"], customer=world["cust"], subject="Low one", priority="low", channel="email")
    services.set_tags(b.id, world["agent"].id, ["domain"])
    services.change_status(a.id, world["agent"].id, "pending_customer")
    db.session.commit()
    auth.login(world["agent"])
    get = lambda **q: numbers_on(client.get("/", query_string=q).get_data(as_text=True))  # noqa: E731
    assert get(priority="urgent") == [a.number]
    assert get(channel="email") == [b.number]
    assert get(tag="domain") == [b.number]
    assert get(status="pending_customer") == [a.number]
    assert get(assignee="none") == [a.number, b.number]  # a changed status last
    assert get(sort="created") == [a.number, b.number]
    assert get(sort="-created") == [b.number, a.number]


def test_keyset_pages_cover_every_ticket_once(app, make, world, client, auth):
    app.config["PAGE_SIZE"] = 7
    made = {make.ticket(queue=world["tech"], customer=world["cust"], subject=f"T{i}").number for i in range(23)}
    db.session.commit()
    auth.login(world["agent"])
    seen, url, pages = [], "/?view=all", 0
    while url:
        page = client.get(url).get_data(as_text=True)
        assert "23" in re.search(r'id="ticket-count">([^<]*)', page).group(1)
        seen += numbers_on(page)
        m = re.search(r'rel="next" href="([^"]+)"', page)
        url = m.group(1).replace("&amp;", "&") if m else None
        pages += 1
    assert pages == 4 and len(seen) == 23 and set(seen) == made


def test_reply_with_attachment_and_download(app, make, world, client, auth, tmp_path):
    t = make.ticket(queue=world["tech"], customer=world["cust"])
    db.session.commit()
    auth.login(world["agent"])
    r = client.post(f"/tickets/{t.number}/messages", data={
        "body": "Terlampir log error", "kind": "reply",
        "attachments": [(io.BytesIO(b"line1\nline2\n"), "error.log"), (io.BytesIO(b"<script>x</script>"), "a.html")],
    }, content_type="multipart/form-data")
    assert r.status_code == 302
    atts = db.session.execute(select(Attachment).where(Attachment.ticket_id == t.id).order_by(Attachment.id)).scalars().all()
    assert [a.filename for a in atts] == ["error.log", "a.html"] and atts[0].size == 12
    page = client.get(f"/tickets/{t.number}").get_data(as_text=True)
    assert "error.log" in page
    d = client.get(f"/attachments/{atts[0].id}")
    assert d.data == b"line1\nline2\n" and d.headers["Content-Disposition"].startswith("attachment")
    h = client.get(f"/attachments/{atts[1].id}")
    assert h.mimetype == "application/octet-stream" and h.headers["X-Content-Type-Options"] == "nosniff"
    auth.logout()
    auth.login(world["cs_agent"])
    assert client.get(f"/attachments/{atts[0].id}").status_code == 404


def test_attachment_size_limit_keeps_typed_text(app, make, world, client, auth):
    app.config["MAX_ATTACHMENT_BYTES"] = 10
    t = make.ticket(queue=world["tech"], customer=world["cust"])
    db.session.commit()
    auth.login(world["agent"])
    r = client.post(f"/tickets/{t.number}/messages", data={
        "body": "Teks yang saya ketik", "kind": "reply", "attachments": [(io.BytesIO(b"x" * 11), "big.bin")]},
        content_type="multipart/form-data")
    page = r.get_data(as_text=True)
    assert r.status_code == 400 and "big.bin" in page and "Teks yang saya ketik" in page
    assert db.session.execute(select(Message).where(Message.ticket_id == t.id)).scalars().all().__len__() == 1


def test_conflict_warning_keeps_draft(app, make, world, client, auth):
    t = make.ticket(queue=world["tech"], customer=world["cust"])
    db.session.commit()
    auth.login(world["agent"])
    page = client.get(f"/tickets/{t.number}").get_data(as_text=True)
    seen = re.search(r'name="seen_last_message_id" type="hidden" value="(\d+)"', page).group(1)
    services.add_agent_message(t.id, world["other"].id, body_text="I already answered", kind="reply")
    db.session.commit()
    r = client.post(f"/tickets/{t.number}/messages", data={"body": "My draft", "kind": "reply", "seen_last_message_id": seen})
    page = r.get_data(as_text=True)
    assert r.status_code == 409 and 'id="conflict-warning"' in page and "My draft" in page and "I already answered" in page
    r = client.post(f"/tickets/{t.number}/messages", data={"body": "My draft", "kind": "reply",
                                                             "seen_last_message_id": seen, "force": "y"})
    assert r.status_code == 302
    assert "My draft" in client.get(f"/tickets/{t.number}").get_data(as_text=True)


def test_take_assign_priority_tags_transfer(app, make, world, client, auth):
    t = make.ticket(queue=world["tech"], customer=world["cust"])
    db.session.commit()
    auth.login(world["agent"])
    client.post(f"/tickets/{t.number}/assign", data={"assignee_id": "me"})
    client.post(f"/tickets/{t.number}/priority", data={"priority": "urgent"})
    client.post(f"/tickets/{t.number}/tags", data={"tags": "Hosting, vip , hosting"})
    r = client.post(f"/tickets/{t.number}/transfer", data={"queue_id": str(world["cs"].id), "note": ""})
    db.session.expire_all()
    t = db.session.get(Ticket, t.id)
    assert t.assignee_id == world["agent"].id and t.priority == "urgent" and t.tag_names == ["hosting", "vip"]
    assert t.queue_id == world["tech"].id  # no note: refused
    r = client.post(f"/tickets/{t.number}/transfer", data={"queue_id": str(world["cs"].id),
                                                          "note": "Customer asks about renewal price"})
    assert r.status_code == 302
    db.session.expire_all()
    t = db.session.get(Ticket, t.id)
    assert t.queue_id == world["cs"].id and t.assignee_id is None
    actions = db.session.execute(select(AuditEvent.action).where(AuditEvent.ticket_id == t.id)
                                 .order_by(AuditEvent.id)).scalars().all()
    assert actions == ["created", "assignee", "priority", "tags", "assignee", "queue"]
    note = db.session.execute(select(Message).where(Message.ticket_id == t.id, Message.kind == "note")).scalar_one()
    assert "Customer asks about renewal price" in note.body_text
    # The agent is not in Customer Support any more: the ticket left their view.
    assert client.get(f"/tickets/{t.number}").status_code == 404


def test_audit_trail_shown_on_ticket_page(app, make, world, client, auth):
    t = make.ticket(queue=world["tech"], customer=world["cust"])
    services.change_priority(t.id, world["agent"].id, "high")
    db.session.commit()
    auth.login(world["agent"])
    page = client.get(f"/tickets/{t.number}").get_data(as_text=True)
    assert re.search(r"priority: Normal → High", page)


def test_phone_call_for_new_and_existing_customer(app, make, world, client, auth):
    auth.login(world["agent"])
    r = client.post("/calls/new", data={"channel": "phone", "customer_email": "new.caller@example.com",
                                        "customer_name": "Agus Saputra", "customer_phone": "0811-2233-4455",
                                        "queue_id": str(world["tech"].id), "priority": "high",
                                        "subject": "Website lambat", "body": "Pelanggan menelepon: website lambat."})
    assert r.status_code == 302
    t = db.session.execute(select(Ticket).where(Ticket.subject == "Website lambat")).scalar_one()
    assert t.channel == "phone" and t.customer.name == "Agus Saputra" and t.customer.phone == "+6281122334455"
    r = client.post("/calls/new", data={"channel": "walk_in", "customer_email": world["cust"].primary_email,
                                        "queue_id": str(world["tech"].id), "priority": "normal",
                                        "subject": "Datang ke kantor", "body": "Minta bantuan setting email."})
    t2 = db.session.execute(select(Ticket).where(Ticket.subject == "Datang ke kantor")).scalar_one()
    assert t2.channel == "walk_in" and t2.customer_id == world["cust"].id


def test_rejected_call_form_keeps_input(app, make, world, client, auth):
    auth.login(world["agent"])
    r = client.post("/calls/new", data={"channel": "phone", "customer_email": "not-an-email",
                                        "queue_id": str(world["tech"].id), "subject": "Keep me", "body": "And me"})
    page = r.get_data(as_text=True)
    assert r.status_code == 400 and 'value="Keep me"' in page and "And me" in page and "not-an-email" in page


def test_bulk_assign_status_close(app, make, world, client, auth):
    ts = [make.ticket(queue=world["tech"], customer=world["cust"], subject=f"B{i}") for i in range(3)]
    db.session.commit()
    auth.login(world["agent"])
    ids = [str(t.id) for t in ts]
    client.post("/tickets/bulk", data={"action": "assign", "value": str(world["other"].id), "ticket_ids": ids})
    client.post("/tickets/bulk", data={"action": "status", "value": "pending_customer", "ticket_ids": ids[:2]})
    client.post("/tickets/bulk", data={"action": "close", "ticket_ids": ids[2:]})
    db.session.expire_all()
    got = [(db.session.get(Ticket, t.id).assignee_id, db.session.get(Ticket, t.id).status) for t in ts]
    oid = world["other"].id
    assert got == [(oid, "pending_customer"), (oid, "pending_customer"), (oid, "closed")]


def test_canned_responses_are_filled_in(app, make, world, client, auth):
    t = make.ticket(queue=world["tech"], customer=world["cust"])
    db.session.add(CannedResponse(queue_id=world["tech"].id, title="Cek",
                                  body="Halo {customer_name}, tiket #{ticket_number} sedang dicek. {agent_name}"))
    db.session.add(CannedResponse(queue_id=world["cs"].id, title="Other queue", body="nope"))
    db.session.commit()
    auth.login(world["agent"])
    page = client.get(f"/tickets/{t.number}").get_data(as_text=True)
    assert f"Halo Budi Santoso, tiket #{t.number} sedang dicek. Bayu Pratama" in page
    assert "Other queue" not in page


def test_times_are_shown_in_jakarta(app, make, world, client, auth):
    t = make.ticket(queue=world["tech"], customer=world["cust"], now=datetime(2026, 3, 2, 23, 30))
    db.session.commit()
    auth.login(world["agent"])
    page = client.get(f"/tickets/{t.number}", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "3 Mar 2026 06:30" in page


def test_customer_sidebar_lists_other_tickets(app, make, world, client, auth):
    a = make.ticket(queue=world["tech"], customer=world["cust"], subject="Domain expired")
    b = make.ticket(queue=world["tech"], customer=world["cust"], subject="Email bounce")
    db.session.commit()
    auth.login(world["agent"])
    page = client.get(f"/tickets/{a.number}").get_data(as_text=True)
    assert f"#{b.number}</a> Email bounce" in page


def test_405_keeps_allow_header(app, client):
    r = client.delete("/login")
    assert r.status_code == 405 and "POST" in r.headers["Allow"]
