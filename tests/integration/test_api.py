"""JSON API v1 against the real database: token auth, every endpoint's effect, pagination, filters,
permissions, errors and the OpenAPI document."""
import base64
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from helpdesk.auth.models import ApiToken
from helpdesk.auth.services import create_api_token
from helpdesk.customers.models import Customer, CustomerEmail
from helpdesk.extensions import db
from helpdesk.jobs import OutboxJob
from helpdesk.tickets import services
from helpdesk.tickets.models import Attachment, AuditEvent, Message, Ticket
from helpdesk.timeutil import utcnow

API = "/api/v1"


class Api:
    """A test client that sends a bearer token (and nothing else) with every call."""

    def __init__(self, client, token):
        self.client, self.token = client, token

    def call(self, method, path, **kw):
        headers = {"Authorization": f"Bearer {self.token}", **kw.pop("headers", {})}
        return self.client.open(path if path.startswith("http") else API + path, method=method, headers=headers,
                                **kw)

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, json=None, **kw):
        return self.call("POST", path, json=json, **kw)

    def patch(self, path, json=None, **kw):
        return self.call("PATCH", path, json=json, **kw)


@pytest.fixture
def desk(app, make, client):
    tech = make.queue(slug="technical-support", name="Technical Support")
    billing = make.queue(slug="billing", name="Billing")
    marketing = make.queue(slug="marketing", name="Marketing")
    agent = make.user(roles=["technical_support"], queues=[tech])
    colleague = make.user(roles=["technical_support"], queues=[tech])
    biller = make.user(roles=["billing"], queues=[billing, tech])
    marketer = make.user(roles=["marketing"], queues=[marketing])
    admin = make.user(roles=["admin"])
    cust = make.customer(email="budi@example.net")
    db.session.flush()
    tokens = {name: create_api_token(u.id, "test") for name, u in
              (("agent", agent), ("biller", biller), ("marketer", marketer), ("admin", admin))}
    db.session.commit()
    return {"tech": tech, "billing": billing, "marketing": marketing, "agent": agent, "colleague": colleague,
            "biller": biller, "marketer": marketer, "admin": admin, "cust": cust,
            "api": {name: Api(client, tok) for name, tok in tokens.items()}, "tokens": tokens}


def _error(resp, code):
    assert resp.status_code == code, (resp.status_code, resp.get_data(as_text=True)[:500])
    assert resp.is_json, resp.get_data(as_text=True)[:200]
    err = resp.get_json()["error"]
    assert err["code"] == code and err["message"]
    return err


def _b64(data):
    return base64.b64encode(data).decode()


# ---------------------------------------------------------------- authentication

def test_missing_malformed_and_invalid_tokens_are_401(app, client, desk):
    r = client.get(f"{API}/tickets")
    assert "Bearer" in _error(r, 401)["message"]
    assert r.headers["WWW-Authenticate"].startswith("Bearer ")
    r = client.get(f"{API}/tickets", headers={"Authorization": f"Basic {desk['tokens']['agent']}"})
    _error(r, 401)
    r = client.get(f"{API}/tickets", headers={"Authorization": "Bearer hd_not-a-real-token"})
    _error(r, 401)
    assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]
    for path in ("/tickets/1000", "/attachments/1"):
        _error(client.get(API + path), 401)
    _error(client.post(f"{API}/tickets", json={}), 401)
    _error(client.patch(f"{API}/tickets/1000", json={"status": "open"}), 401)


def test_revoked_token_and_inactive_user_are_refused(app, desk):
    api = desk["api"]["agent"]
    assert api.get("/tickets").status_code == 200
    row = db.session.execute(select(ApiToken).where(ApiToken.user_id == desk["agent"].id)).scalar_one()
    assert row.last_used_at is not None  # recorded by the successful call
    row.revoked_at = utcnow()
    db.session.commit()
    _error(api.get("/tickets"), 401)
    desk["marketer"].active = False
    db.session.commit()
    _error(desk["api"]["marketer"].get("/tickets"), 401)


def test_a_browser_session_does_not_authenticate_the_api(app, client, auth, make, desk):
    make.ticket(queue=desk["tech"], customer=desk["cust"])
    db.session.commit()
    auth.login(desk["agent"])
    assert client.get("/").status_code == 200  # the session works for the desk...
    _error(client.get(f"{API}/tickets"), 401)  # ...but not for the API
    _error(client.post(f"{API}/tickets", json={"subject": "x"}), 401)
    r = desk["api"]["agent"].get("/tickets?lang=en")
    assert r.status_code == 200 and len(r.get_json()["items"]) == 1
    assert "Set-Cookie" not in r.headers and r.headers["Cache-Control"] == "no-store"


def test_cli_token_works_with_the_api(app, desk):
    out = app.test_cli_runner().invoke(args=["users", "create-token", desk["agent"].email])
    assert out.exit_code == 0, out.output
    token = out.output.strip().splitlines()[-1]
    stored = set(db.session.execute(select(ApiToken.token_hash)).scalars())
    assert ApiToken.hash(token) in stored and token not in stored  # kept hashed only
    assert Api(app.test_client(), token).get("/tickets").status_code == 200


# ---------------------------------------------------------------- list, filters, pagination

def test_pagination_walks_every_ticket_exactly_once(app, make, desk):
    same_time = utcnow() - timedelta(hours=1)
    created = set()
    for i in range(23):  # ties on last_activity_at must not lose or repeat a ticket
        t = make.ticket(queue=desk["tech"], customer=desk["cust"], now=same_time if i % 3 else None)
        created.add(t.number)
    db.session.commit()
    seen, pages = [], 0
    url = "/tickets?status=any&limit=5"
    while url:
        r = desk["api"]["agent"].get(url)
        assert r.status_code == 200
        body = r.get_json()
        assert set(body) == {"items", "next"}
        assert len(body["items"]) <= 5
        seen += [item["number"] for item in body["items"]]
        url = body["next"]
        assert url is None or (url.startswith("http://localhost/api/v1/tickets?") and "limit=5" in url
                               and "status=any" in url)
        pages += 1
    assert pages == 5 and len(seen) == 23 and set(seen) == created


def test_pagination_keeps_filters_and_limit_bounds(app, make, desk):
    for i in range(10):  # 5 by phone: pages of 2, 2 and 1
        make.ticket(queue=desk["tech"], customer=desk["cust"], channel="phone" if i % 2 else "email")
    db.session.commit()
    api = desk["api"]["agent"]
    first = api.get("/tickets?channel=phone&limit=2").get_json()
    assert "channel=phone" in first["next"]
    second = api.get(first["next"]).get_json()
    third = api.get(second["next"]).get_json()
    numbers = [t["number"] for page in (first, second, third) for t in page["items"]]
    assert len(numbers) == 5 == len(set(numbers)) and third["next"] is None
    for bad in ("limit=0", "limit=101", "limit=abc", "cursor=%%%", "status=bogus", "sort=subject"):
        _error(api.get(f"/tickets?{bad}"), 400)
    assert len(api.get("/tickets?limit=100").get_json()["items"]) == 10


def test_list_filters(app, make, desk):
    tech, agent = desk["tech"], desk["agent"]
    a = make.ticket(queue=tech, customer=desk["cust"], subject="Mail bounce", channel="email", priority="high",
                    tags=["hosting"], body="Email bounced with error 550")
    b = make.ticket(queue=tech, customer=desk["cust"], subject="Phone call", channel="phone", priority="low")
    c = make.ticket(queue=desk["billing"], customer=make.customer(email="siti@example.net"), subject="Invoice",
                    channel="web")
    services.assign(a.id, agent.id, agent.id)
    services.assign(c.id, desk["biller"].id, desk["biller"].id)
    services.change_status(b.id, agent.id, "resolved")
    db.session.commit()
    api = desk["api"]["admin"]

    def numbers(query):
        r = api.get(f"/tickets?{query}")
        assert r.status_code == 200, r.get_json()
        return {t["number"] for t in r.get_json()["items"]}

    assert numbers("") == {a.number, c.number}  # default: open statuses
    assert numbers("status=any") == {a.number, b.number, c.number}
    assert numbers("status=resolved") == {b.number}
    assert numbers("status=any&queue=technical-support") == {a.number, b.number}
    assert numbers(f"status=any&queue={desk['billing'].id}") == {c.number}
    assert numbers(f"status=any&assignee={agent.id}") == {a.number}
    assert numbers("status=any&assignee=none") == {b.number}
    assert numbers("status=any&channel=phone") == {b.number}
    assert numbers("status=any&priority=high") == {a.number}
    assert numbers("status=any&tag=hosting") == {a.number}
    assert numbers("status=any&q=bounced") == {a.number}
    assert numbers(f"status=any&q={c.number}") == {c.number}
    assert numbers("status=any&q=siti@example.net") == {c.number}
    assert {t["number"] for t in desk["api"]["agent"].get("/tickets?assignee=me").get_json()["items"]} == {a.number}
    item = next(t for t in api.get("/tickets?status=any&tag=hosting").get_json()["items"])
    assert item["queue"] == {"id": tech.id, "slug": "technical-support", "name": "Technical Support"}
    assert item["assignee"]["id"] == agent.id and item["customer"]["email"] == "budi@example.net"
    assert item["tags"] == ["hosting"] and item["priority"] == "high" and item["created_at"].endswith("Z")
    assert item["url"] == f"http://localhost/api/v1/tickets/{a.number}"
    assert _error(api.get("/tickets?queue=nope"), 400)["field"] == "queue"
    assert _error(api.get("/tickets?assignee=bob"), 400)["field"] == "assignee"
    assert _error(api.get("/tickets?channel=fax"), 400)["field"] == "channel"


# ---------------------------------------------------------------- permissions

def test_agents_see_their_queues_and_assigned_tickets_only(app, make, desk):
    mine = make.ticket(queue=desk["tech"], customer=desk["cust"], subject="Tech one")
    other = make.ticket(queue=desk["marketing"], customer=desk["cust"], subject="Marketing one")
    assigned = make.ticket(queue=desk["billing"], customer=desk["cust"], subject="Billing, assigned to biller")
    services.assign(assigned.id, desk["biller"].id, desk["biller"].id)
    db.session.commit()

    def listed(who):
        return {t["number"] for t in desk["api"][who].get("/tickets?status=any").get_json()["items"]}

    assert listed("agent") == {mine.number}
    assert listed("marketer") == {other.number}
    assert listed("biller") == {mine.number, assigned.number}
    assert listed("admin") == {mine.number, other.number, assigned.number}
    # Another queue's agent gets the same 404 as for a number that does not exist.
    api = desk["api"]["marketer"]
    missing = _error(api.get("/tickets/999999"), 404)
    assert _error(api.get(f"/tickets/{mine.number}"), 404) == missing
    _error(api.patch(f"/tickets/{mine.number}", json={"priority": "urgent"}), 404)
    _error(api.post(f"/tickets/{mine.number}/messages", json={"body": "hi"}), 404)
    db.session.expire_all()
    t = db.session.get(Ticket, mine.id)
    assert t.priority == "normal" and t.message_count == 1


def test_agent_cannot_create_in_a_queue_they_do_not_belong_to(app, desk):
    r = desk["api"]["agent"].post("/tickets", json={
        "customer": {"email": "new.person@example.org", "name": "Orang Baru"}, "queue": "marketing",
        "subject": "Promo", "body": "Info promo"})
    _error(r, 403)
    assert db.session.execute(select(func.count()).select_from(Ticket)).scalar() == 0
    assert db.session.execute(select(CustomerEmail).where(CustomerEmail.email == "new.person@example.org")
                              ).first() is None  # rolled back with the ticket


# ---------------------------------------------------------------- create, get, attachments

def test_create_ticket_for_new_and_existing_customers(app, desk):
    api = desk["api"]["agent"]
    r = api.post("/tickets", json={
        "customer": {"email": "Rina.Susanti@Example.ORG", "name": "Rina Susanti", "phone": "0812-3456-7890"},
        "queue": "technical-support", "channel": "phone", "subject": "Website error 500",
        "body": "Pelanggan menelepon: website error 500 sejak pagi.", "priority": "high", "tags": ["website"],
        "assignee": "me",
        "attachments": [{"filename": "screenshot.png", "content_type": "image/png",
                         "content_base64": _b64(b"\x89PNG fake image")}]})
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert r.headers["Location"] == f"http://localhost/api/v1/tickets/{body['number']}"
    db.session.expire_all()
    t = db.session.execute(select(Ticket).where(Ticket.number == body["number"])).scalar_one()
    assert (t.subject, t.channel, t.priority, t.status, t.queue_id, t.assignee_id) == (
        "Website error 500", "phone", "high", "new", desk["tech"].id, desk["agent"].id)
    assert t.tag_names == ["website"]
    cust = db.session.get(Customer, t.customer_id)
    assert cust.name == "Rina Susanti" and cust.primary_email == "rina.susanti@example.org"
    assert cust.phone == "+6281234567890"
    created = db.session.execute(select(AuditEvent).where(AuditEvent.ticket_id == t.id,
                                                          AuditEvent.action == "created")).scalar_one()
    assert created.actor_user_id == desk["agent"].id
    [msg] = body["messages"]
    assert msg["author"] == {"type": "customer", "id": cust.id, "name": "Rina Susanti"}
    assert msg["attachments"][0]["filename"] == "screenshot.png" and msg["attachments"][0]["size"] == 15
    # The same email again finds the same customer (by address, case-insensitively).
    r = api.post("/tickets", json={"customer": {"email": "rina.susanti@example.org"}, "queue": desk["tech"].id,
                                   "subject": "Follow-up", "body": "Masih error"})
    assert r.status_code == 201
    assert r.get_json()["customer"]["id"] == cust.id and r.get_json()["channel"] == "web"
    assert db.session.execute(select(func.count()).select_from(Customer)).scalar() == 2  # budi + rina


@pytest.mark.parametrize("payload, field", [
    ({"queue": "technical-support", "subject": "x", "body": "y"}, "customer"),
    ({"customer": {"email": "a@example.org"}, "subject": "x", "body": "y"}, "queue"),
    ({"customer": {"email": "a@example.org"}, "queue": "technical-support", "body": "y"}, "subject"),
    ({"customer": {"email": "a@example.org"}, "queue": "technical-support", "subject": " ", "body": "y"},
     "subject"),
    ({"customer": {"email": "a@example.org"}, "queue": "technical-support", "subject": "x", "body": ""}, "body"),
    ({"customer": {"email": "not an email"}, "queue": "technical-support", "subject": "x", "body": "y"}, "email"),
    ({"customer": {"email": "a@example.org", "age": 3}, "queue": "technical-support", "subject": "x", "body": "y"},
     "customer"),
    ({"customer": {"email": "a@example.org"}, "queue": "nope", "subject": "x", "body": "y"}, "queue"),
    ({"customer": {"email": "a@example.org"}, "queue": "technical-support", "subject": "x", "body": "y",
      "channel": "fax"}, "channel"),
    ({"customer": {"email": "a@example.org"}, "queue": "technical-support", "subject": "x", "body": "y",
      "priority": 3}, "priority"),
    ({"customer": {"email": "a@example.org"}, "queue": "technical-support", "subject": "x", "body": "y",
      "colour": "red"}, "colour"),
    ({"customer": {"email": "a@example.org"}, "queue": "technical-support", "subject": "x", "body": "y",
      "attachments": [{"filename": "a.txt", "content_base64": "***"}]}, "attachments"),
])
def test_create_ticket_validation_errors(app, desk, payload, field):
    err = _error(desk["api"]["agent"].post("/tickets", json=payload), 400)
    assert err["field"] == field
    assert db.session.execute(select(func.count()).select_from(Ticket)).scalar() == 0


def test_body_must_be_a_json_object(app, desk):
    api = desk["api"]["agent"]
    for data in ("not json", "[1, 2]", ""):
        err = _error(api.call("POST", "/tickets", data=data, headers={"Content-Type": "application/json"}), 400)
        assert "JSON object" in err["message"]


def test_get_ticket_with_replies_notes_and_attachment_download(app, make, desk):
    t = make.ticket(queue=desk["tech"], customer=desk["cust"], body="Halaman login error",
                    files=[("page.html", "text/html", b"<script>alert(1)</script>")])
    services.add_agent_message(t.id, desk["agent"].id, kind="note", body_text="Cek log nginx dulu")
    services.add_agent_message(t.id, desk["agent"].id, body_text="Sudah kami perbaiki")
    db.session.commit()
    api = desk["api"]["agent"]
    body = api.get(f"/tickets/{t.number}").get_json()
    assert body["number"] == t.number and body["status"] == "open"
    assert body["allowed_statuses"] == ["pending_customer", "pending_billing", "resolved", "closed"]
    assert [(m["kind"], m["author"]["type"], m["body_text"]) for m in body["messages"]] == [
        ("reply", "customer", "Halaman login error"), ("note", "agent", "Cek log nginx dulu"),
        ("reply", "agent", "Sudah kami perbaiki")]
    [att] = body["messages"][0]["attachments"]
    assert att["filename"] == "page.html" and att["content_type"] == "text/html" and att["size"] == 25
    assert att["url"].startswith("http://localhost/api/v1/attachments/")
    r = api.get(att["url"])
    assert r.status_code == 200 and r.data == b"<script>alert(1)</script>"
    assert r.headers["Content-Type"] == "application/octet-stream"  # HTML is never served as HTML
    assert r.headers["Content-Disposition"].startswith("attachment;") and "page.html" in r.headers[
        "Content-Disposition"]
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in r.headers["Content-Security-Policy"]
    # Nobody who cannot see the ticket gets the file, nor learns that it exists.
    assert _error(desk["api"]["marketer"].get(att["url"]), 404) == _error(api.get("/attachments/999999"), 404)
    assert desk["api"]["admin"].get(att["url"]).data == b"<script>alert(1)</script>"


def test_merged_number_leads_to_the_merged_ticket(app, make, desk):
    a = make.ticket(queue=desk["tech"], customer=desk["cust"], subject="A")
    b = make.ticket(queue=desk["tech"], customer=desk["cust"], subject="B")
    services.merge(a.id, b.id, desk["agent"].id)
    db.session.commit()
    body = desk["api"]["agent"].get(f"/tickets/{a.number}").get_json()
    assert body["number"] == b.number and len(body["messages"]) == 2


# ---------------------------------------------------------------- messages

def test_reply_opens_the_ticket_and_queues_the_mail_and_notes_stay_internal(app, make, desk):
    t = make.ticket(queue=desk["tech"], customer=desk["cust"])
    db.session.commit()
    api = desk["api"]["agent"]
    r = api.post(f"/tickets/{t.number}/messages", json={"kind": "note", "body": "Internal: cek DNS"})
    assert r.status_code == 201 and r.get_json()["kind"] == "note"
    r = api.post(f"/tickets/{t.number}/messages", json={
        "body": "Halo, sudah kami cek.", "attachments": [{"filename": "log.txt", "content_base64": _b64(b"ok")}]})
    assert r.status_code == 201, r.get_json()
    reply = r.get_json()
    assert reply["author"]["id"] == desk["agent"].id and reply["attachments"][0]["filename"] == "log.txt"
    db.session.expire_all()
    t = db.session.get(Ticket, t.id)
    assert t.status == "open" and t.first_response_at is not None and t.message_count == 3
    kinds = db.session.execute(select(Message.kind).where(Message.ticket_id == t.id).order_by(Message.id)).scalars()
    assert list(kinds) == ["reply", "note", "reply"]
    att = db.session.execute(select(Attachment).where(Attachment.message_id == reply["id"])).scalar_one()
    assert att.size == 2 and att.content_type == "application/octet-stream"
    from helpdesk.mail.models import OutboundMail

    replies = db.session.execute(select(OutboundMail).where(OutboundMail.kind == "reply")).scalars().all()
    assert [r.message_row_id for r in replies] == [reply["id"]]  # the note sends no mail
    sends = db.session.execute(select(OutboxJob.args).where(OutboxJob.func == "helpdesk.mail.jobs.send_outbound")
                               ).scalars().all()
    assert [replies[0].id] in [list(a)[:1] for a in sends]
    r = api.post(f"/tickets/{t.number}/messages", json={"body": "Selesai", "status": "resolved"})
    assert r.status_code == 201
    db.session.expire_all()
    assert db.session.get(Ticket, t.id).status == "resolved"


def test_reply_conflict_when_someone_else_wrote(app, make, desk):
    t = make.ticket(queue=desk["tech"], customer=desk["cust"])
    db.session.commit()
    api = desk["api"]["agent"]
    seen = api.get(f"/tickets/{t.number}").get_json()["messages"][-1]["id"]
    _, newer = services.add_customer_message(t.id, desk["cust"].id, body_text="Ada update?")
    db.session.commit()
    err = _error(api.post(f"/tickets/{t.number}/messages", json={"body": "Hi", "seen_last_message_id": seen}), 409)
    assert err["details"] == {"new_message_ids": [newer.id]}
    r = api.post(f"/tickets/{t.number}/messages", json={"body": "Hi", "seen_last_message_id": seen, "force": True})
    assert r.status_code == 201


def test_message_validation_and_closed_ticket(app, make, desk):
    t = make.ticket(queue=desk["tech"], customer=desk["cust"])
    db.session.commit()
    api = desk["api"]["agent"]
    assert _error(api.post(f"/tickets/{t.number}/messages", json={"body": "  "}), 400)["field"] == "body"
    assert _error(api.post(f"/tickets/{t.number}/messages", json={"body": "x", "kind": "sms"}), 400)["field"] == "kind"
    assert _error(api.post(f"/tickets/{t.number}/messages", json={"body": "x", "seen_last_message_id": "1"}),
                  400)["field"] == "seen_last_message_id"
    services.change_status(t.id, desk["agent"].id, "closed")
    db.session.commit()
    assert "closed" in _error(api.post(f"/tickets/{t.number}/messages", json={"body": "x"}), 409)["message"]
    assert db.session.get(Ticket, t.id).message_count == 1


# ---------------------------------------------------------------- changes (PATCH)

def test_patch_status_priority_tags_and_assignee(app, make, desk):
    t = make.ticket(queue=desk["tech"], customer=desk["cust"])
    db.session.commit()
    api = desk["api"]["agent"]
    r = api.patch(f"/tickets/{t.number}", json={"status": "pending_customer", "priority": "urgent",
                                                 "tags": ["VIP", "dns"], "assignee": "me"})
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert (body["status"], body["priority"], body["tags"], body["assignee"]["id"]) == (
        "pending_customer", "urgent", ["dns", "vip"], desk["agent"].id)
    db.session.expire_all()
    t = db.session.get(Ticket, t.id)
    assert (t.status, t.priority, t.assignee_id, t.tag_names) == ("pending_customer", "urgent", desk["agent"].id,
                                                                 ["dns", "vip"])
    actions = set(db.session.execute(select(AuditEvent.action).where(AuditEvent.ticket_id == t.id)).scalars())
    assert {"status", "priority", "tags", "assignee"} <= actions
    assert api.patch(f"/tickets/{t.number}", json={"assignee": desk["colleague"].id}).get_json()["assignee"][
        "id"] == desk["colleague"].id
    assert api.patch(f"/tickets/{t.number}", json={"assignee": None}).get_json()["assignee"] is None
    db.session.expire_all()
    assert db.session.get(Ticket, t.id).assignee_id is None
    err = _error(api.patch(f"/tickets/{t.number}", json={"assignee": desk["marketer"].id}), 400)
    assert err["field"] == "assignee" and "not a member" in err["message"]


def test_illegal_transition_is_409_and_nothing_changes(app, make, desk):
    t = make.ticket(queue=desk["tech"], customer=desk["cust"])
    services.change_status(t.id, desk["agent"].id, "resolved")
    db.session.commit()
    api = desk["api"]["agent"]
    err = _error(api.patch(f"/tickets/{t.number}", json={"priority": "urgent", "status": "pending_customer"}), 409)
    assert err["message"] == "A ticket cannot go from 'resolved' to 'pending_customer'."
    db.session.expire_all()
    t = db.session.get(Ticket, t.id)
    assert t.status == "resolved" and t.priority == "normal"  # all or nothing
    assert _error(api.patch(f"/tickets/{t.number}", json={"status": "reopened"}), 400)["field"] == "status"


def test_only_billing_releases_pending_billing(app, make, desk):
    t = make.ticket(queue=desk["tech"], customer=desk["cust"])
    services.change_status(t.id, desk["agent"].id, "pending_billing")
    db.session.commit()
    err = _error(desk["api"]["agent"].patch(f"/tickets/{t.number}", json={"status": "open"}), 403)
    assert "billing" in err["message"]
    _error(desk["api"]["admin"].patch(f"/tickets/{t.number}", json={"status": "open"}), 403)  # admin ≠ billing
    assert desk["api"]["biller"].patch(f"/tickets/{t.number}", json={"status": "open"}).status_code == 200
    db.session.expire_all()
    assert db.session.get(Ticket, t.id).status == "open"


def test_queue_change_needs_a_handover_note(app, make, desk):
    t = make.ticket(queue=desk["tech"], customer=desk["cust"])
    db.session.commit()
    api = desk["api"]["biller"]  # member of tech and billing
    assert _error(api.patch(f"/tickets/{t.number}", json={"queue": "billing"}), 400)["field"] == "note"
    assert _error(api.patch(f"/tickets/{t.number}", json={"note": "why"}), 400)["field"] == "note"
    r = api.patch(f"/tickets/{t.number}", json={"queue": "billing", "note": "Soal pembayaran",
                                                "assignee": "me"})
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["queue"]["slug"] == "billing" and body["assignee"]["id"] == desk["biller"].id
    assert body["messages"][-1]["kind"] == "note" and "Soal pembayaran" in body["messages"][-1]["body_text"]
    db.session.expire_all()
    assert db.session.get(Ticket, t.id).queue_id == desk["billing"].id
    ev = db.session.execute(select(AuditEvent).where(AuditEvent.ticket_id == t.id, AuditEvent.action == "queue")
                            ).scalar_one()
    assert (ev.old_value, ev.new_value, ev.note) == ("Technical Support", "Billing", "Soal pembayaran")
    # The tech agent no longer sees it (not a member of billing, not assigned).
    _error(desk["api"]["agent"].get(f"/tickets/{t.number}"), 404)


def test_transfer_out_of_sight_then_assign_is_refused_as_a_whole(app, make, desk):
    t = make.ticket(queue=desk["tech"], customer=desk["cust"])
    db.session.commit()
    err = _error(desk["api"]["agent"].patch(f"/tickets/{t.number}", json={
        "queue": "billing", "note": "Untuk billing", "assignee": desk["biller"].id}), 403)
    assert err["field"] == "assignee"
    db.session.expire_all()
    assert db.session.get(Ticket, t.id).queue_id == desk["tech"].id


def test_patch_validation(app, make, desk):
    t = make.ticket(queue=desk["tech"], customer=desk["cust"])
    db.session.commit()
    api = desk["api"]["agent"]
    assert "Nothing to change" in _error(api.patch(f"/tickets/{t.number}", json={}), 400)["message"]
    assert _error(api.patch(f"/tickets/{t.number}", json={"priority": "asap"}), 400)["field"] == "priority"
    assert _error(api.patch(f"/tickets/{t.number}", json={"tags": "a,b"}), 400)["field"] == "tags"
    assert _error(api.patch(f"/tickets/{t.number}", json={"assignee": True}), 400)["field"] == "assignee"
    assert _error(api.patch(f"/tickets/{t.number}", json={"subject": "new"}), 400)["field"] == "subject"
    _error(api.patch("/tickets/999999", json={"priority": "low"}), 404)


# ---------------------------------------------------------------- HTTP-level errors

def test_unknown_path_and_method_are_json(app, client, desk):
    api = desk["api"]["agent"]
    _error(api.get("/nothing-here"), 404)
    _error(api.call("DELETE", "/tickets/1000"), 405)
    _error(client.put(f"{API}/tickets"), 405)


def test_request_and_attachment_size_limits_are_413(app_factory, make, desk):
    small = app_factory(MAX_CONTENT_LENGTH=2000, MAX_ATTACHMENT_BYTES=100)
    t = make.ticket(queue=desk["tech"], customer=desk["cust"])
    db.session.commit()
    api = Api(small.test_client(), desk["tokens"]["agent"])
    r = api.post(f"/tickets/{t.number}/messages", json={"body": "x" * 5000})
    _error(r, 413)
    r = api.post(f"/tickets/{t.number}/messages", json={
        "body": "see file", "attachments": [{"filename": "big.bin", "content_base64": _b64(b"x" * 101)}]})
    assert _error(r, 413)["field"] == "attachments"
    r = api.post(f"/tickets/{t.number}/messages", json={
        "body": "see file", "attachments": [{"filename": "ok.bin", "content_base64": _b64(b"x" * 100)}]})
    assert r.status_code == 201
    db.session.expire_all()
    assert db.session.get(Ticket, t.id).message_count == 2


# ---------------------------------------------------------------- OpenAPI

def _api_routes(app):
    out = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api."):
            path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule[len(API):])
            out |= {(path, m.lower()) for m in rule.methods - {"HEAD", "OPTIONS"}}
    return out


def _walk(node):
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


def test_openapi_describes_exactly_the_routes(app, client):
    r = client.get(f"{API}/openapi.json")  # no token needed
    assert r.status_code == 200
    doc = r.get_json()
    assert doc["openapi"] == "3.1.0" and doc["servers"] == [{"url": "/api/v1"}]
    methods = {"get", "post", "put", "patch", "delete"}
    documented = {(path, m) for path, item in doc["paths"].items() for m in item if m in methods}
    assert documented == _api_routes(app)
    op_ids = [op["operationId"] for item in doc["paths"].values() for m, op in item.items() if m in methods]
    assert len(op_ids) == len(set(op_ids))
    for path, item in doc["paths"].items():
        declared = {p["name"] for p in item.get("parameters", []) if p["in"] == "path"}
        assert declared == set(re.findall(r"{(\w+)}", path)), path
        for m, op in item.items():
            if m in methods:
                assert op["responses"] and op["summary"], (path, m)
                if m in ("post", "patch"):
                    assert op["requestBody"]["content"]["application/json"]["schema"], (path, m)
    for node in _walk(doc):  # every $ref resolves
        if "$ref" in node:
            target = doc
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]


def test_openapi_ticket_schema_matches_the_answers(app, make, desk):
    make.ticket(queue=desk["tech"], customer=desk["cust"], files=[("a.txt", "text/plain", b"a")])
    db.session.commit()
    doc = desk["api"]["agent"].get("/openapi.json").get_json()
    schemas = doc["components"]["schemas"]
    item = desk["api"]["agent"].get("/tickets").get_json()["items"][0]
    assert set(item) == set(schemas["Ticket"]["properties"])
    detail = desk["api"]["agent"].get(item["url"]).get_json()
    assert set(detail) == set(schemas["Ticket"]["properties"]) | set(schemas["TicketDetail"]["allOf"][1]["properties"])
    msg = detail["messages"][0]
    assert set(msg) == set(schemas["Message"]["properties"])
    assert set(msg["attachments"][0]) == set(schemas["Attachment"]["properties"])
