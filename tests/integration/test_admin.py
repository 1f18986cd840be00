"""Admin pages: agents (invite, edit, deactivate, resets), queues, canned responses, job status."""
import re
import time
from urllib.parse import urlsplit

import pyotp
import pytest
import time_machine
from sqlalchemy import select

from helpdesk.admin import services as admin_services
from helpdesk.auth import services as accounts
from helpdesk.auth import tokens
from helpdesk.auth.models import User
from helpdesk.errors import DomainError
from helpdesk.extensions import db, mail
from helpdesk.jobs import OutboxJob, enqueue
from helpdesk.tickets import services as ticket_services
from helpdesk.tickets.models import AuditEvent, CannedResponse, Queue, QueueMember
from tests.conftest import extract_csrf
from tests.factories import PASSWORD

NEW_PASSWORD = "welcome-to-the-desk"


@pytest.fixture
def admin(app, make, client):
    """A logged-in admin (demo-style account: no TOTP step in these tests)."""
    user = make.user(roles=["admin"], name="Ani Admin")
    db.session.commit()
    resp = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert resp.status_code == 302
    return user


def events(object_type, object_id):
    return db.session.execute(select(AuditEvent.action, AuditEvent.old_value, AuditEvent.new_value).where(
        AuditEvent.object_type == object_type, AuditEvent.object_id == object_id).order_by(AuditEvent.id)).all()


def queue_ids(user_id):
    return set(db.session.execute(select(QueueMember.queue_id).where(QueueMember.user_id == user_id)).scalars())


def read_mail(run_jobs):
    with mail.record_messages() as outbox:
        run_jobs()
    return outbox


def admin_rules(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("admin."):
            url = rule.rule
            for arg in rule.arguments:
                url = re.sub(r"<[^>]*" + arg + ">", "send-reset" if arg == "action" else "1", url)
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                yield method, url


# ---------------------------------------------------------------- access

@pytest.mark.parametrize("roles", [["customer_support"], ["billing"], ["technical_support", "marketing"]])
def test_every_admin_page_is_forbidden_for_non_admins(app, client, make, roles):
    user = make.user(roles=roles)
    queue = make.queue()
    db.session.commit()
    client.post("/login", data={"email": user.email, "password": PASSWORD})
    rules = list(admin_rules(app))
    assert len(rules) >= 15
    for method, url in rules:
        resp = client.open(url, method=method)
        assert resp.status_code == 403, (method, url, resp.status_code)
    assert db.session.execute(select(Queue.id)).scalars().all() == [queue.id]
    assert not db.session.execute(select(AuditEvent.id)).first()


def test_admin_pages_send_anonymous_users_to_login(app, client):
    for method, url in admin_rules(app):
        resp = client.open(url, method=method)
        assert resp.status_code == 302 and urlsplit(resp.headers["Location"]).path == "/login", (method, url)


def test_admin_nav_link_only_for_admins(app, client, make, admin):
    assert 'href="/admin/"' in client.get("/").get_data(as_text=True)
    for url in ("/admin/", "/admin/agents", "/admin/queues", "/admin/canned", "/admin/jobs", "/admin/agents/invite"):
        assert client.get(url).status_code == 200, url


def test_admin_forms_need_the_csrf_token(csrf_app, make):
    client = csrf_app.test_client()
    user = make.user(roles=["admin"])
    db.session.commit()
    token = extract_csrf(client.get("/login").get_data(as_text=True))
    client.post("/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token})
    assert client.post("/admin/queues", data={"slug": "sales", "name": "Sales"}).status_code == 400
    assert not db.session.execute(select(Queue.id)).first()
    token = extract_csrf(client.get("/admin/queues").get_data(as_text=True))
    resp = client.post("/admin/queues", data={"slug": "sales", "name": "Sales", "csrf_token": token})
    assert resp.status_code == 302
    assert db.session.execute(select(Queue.slug)).scalars().all() == ["sales"]


# ---------------------------------------------------------------- agents

def test_invite_flow_end_to_end(app, client, make, admin, run_jobs):
    queue = make.queue(name="Technical Support")
    db.session.commit()
    queue_id, admin_id = queue.id, admin.id
    resp = client.post("/admin/agents/invite", data={
        "email": "Budi.Santoso@Example.com", "name": "Budi Santoso", "roles": ["technical_support"],
        "queues": [str(queue_id)]})
    assert resp.status_code == 302
    user = db.session.execute(select(User).where(User.email == "budi.santoso@example.com")).scalar_one()
    uid = user.id
    assert user.password_hash is None and user.invited_at is not None and user.roles == {"technical_support"}
    assert queue_ids(uid) == {queue_id}
    assert ("invited", None, "budi.santoso@example.com") in events("user", uid)
    assert db.session.execute(select(AuditEvent.actor_user_id).where(AuditEvent.action == "invited")
                              ).scalar_one() == admin_id
    assert db.session.execute(select(OutboxJob.func, OutboxJob.queue, OutboxJob.args)).all() == [
        ("helpdesk.auth.jobs.send_invite", "mail", [uid])]
    assert client.get(f"/admin/agents/{uid}").get_data(as_text=True).count("Invited") >= 1

    outbox = read_mail(run_jobs)
    assert len(outbox) == 1
    msg = outbox[0]
    assert msg.recipients == ["budi.santoso@example.com"] and "Budi Santoso" in msg.body
    link = re.search(r"http://localhost:\d+(/invite/\S+)", msg.body).group(1)
    assert db.session.get(OutboxJob, 1).done_at is not None

    client.post("/logout")
    invitee = app.test_client()
    page = invitee.get(link)
    assert page.status_code == 200 and "budi.santoso@example.com" in page.get_data(as_text=True)
    assert db.session.get(User, uid).password_hash is None  # GET changes nothing
    resp = invitee.post(link, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert resp.status_code == 302 and urlsplit(resp.headers["Location"]).path == "/login"
    resp = invitee.post("/login", data={"email": "budi.santoso@example.com", "password": NEW_PASSWORD})
    assert resp.status_code == 302 and urlsplit(resp.headers["Location"]).path == "/"
    assert invitee.get("/").status_code == 200
    assert invitee.get(link).status_code == 400  # single use
    assert "invite_accepted" in [e[0] for e in events("user", uid)]


def test_invited_admin_must_set_up_two_factor_at_first_login(app, client, admin, run_jobs):
    client.post("/admin/agents/invite", data={"email": "boss@example.com", "name": "Boss", "roles": ["admin"]})
    link = re.search(r"(/invite/\S+)", read_mail(run_jobs)[0].body).group(1)
    invitee = app.test_client()
    invitee.post(link, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    resp = invitee.post("/login", data={"email": "boss@example.com", "password": NEW_PASSWORD})
    assert urlsplit(resp.headers["Location"]).path == "/login/2fa-setup"
    assert invitee.get("/").status_code == 302


def test_invite_link_expires(app, client, make):
    user = make.user(password_hash=None)
    db.session.commit()
    link = "/invite/" + tokens.make_link_token(user, "invite")
    max_age = app.config["INVITE_MAX_AGE"]
    with time_machine.travel(time.time() + max_age - 60, tick=False):
        assert client.get(link).status_code == 200
    with time_machine.travel(time.time() + max_age + 60, tick=False):
        resp = client.post(link, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
        assert resp.status_code == 400 and "expired" in resp.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(User, user.id).password_hash is None


def test_invite_form_rejected_keeps_what_was_typed(app, client, make, admin):
    make.user(email="taken@example.com")
    db.session.commit()
    resp = client.post("/admin/agents/invite", data={"email": "taken@example.com", "name": "Dewi Typed",
                                                     "roles": ["billing"]})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "already has an account" in html
    assert 'value="Dewi Typed"' in html and 'value="taken@example.com"' in html
    assert re.search(r'value="billing"\s+checked', html)
    resp = client.post("/admin/agents/invite", data={"email": "not-an-email", "name": "X", "roles": ["nope"]})
    assert resp.status_code == 400 and 'value="not-an-email"' in resp.get_data(as_text=True)
    assert not db.session.execute(select(OutboxJob.id)).first()


def test_edit_agent_name_roles_and_queues_is_audited(app, client, make, admin):
    q1, q2 = make.queue(name="Billing"), make.queue(name="Marketing")
    agent = make.user(roles=["customer_support"], queues=[q1], name="Sari")
    db.session.commit()
    uid = agent.id
    resp = client.post(f"/admin/agents/{uid}", data={"name": "Sari Wulandari", "roles": ["billing", "marketing"],
                                                     "queues": [str(q2.id)]})
    assert resp.status_code == 302
    db.session.expire_all()
    agent = db.session.get(User, uid)
    assert agent.name == "Sari Wulandari" and agent.roles == {"billing", "marketing"}
    assert queue_ids(uid) == {q2.id}
    log = events("user", uid)
    assert ("name", "Sari", "Sari Wulandari") in log
    assert ("roles", "customer_support", "billing, marketing") in log
    assert ("queue_removed", q1.slug, None) in log and ("queue_added", None, q2.slug) in log
    page = client.get(f"/admin/agents/{uid}").get_data(as_text=True)
    assert "billing, marketing" in page and "Ani Admin" in page  # the history shows who did it


def test_edit_agent_rejected_keeps_input(app, client, make, admin):
    agent = make.user(roles=["customer_support"])
    db.session.commit()
    resp = client.post(f"/admin/agents/{agent.id}", data={"name": "", "roles": ["billing"]})
    assert resp.status_code == 400
    assert re.search(r'value="billing"\s+checked', resp.get_data(as_text=True))
    db.session.expire_all()
    assert db.session.get(User, agent.id).roles == {"customer_support"}


def test_last_admin_keeps_the_admin_role_and_cannot_deactivate_themselves(app, client, admin):
    uid = admin.id
    resp = client.post(f"/admin/agents/{uid}", data={"name": "Ani", "roles": ["billing"]})
    assert resp.status_code == 400 and "last active admin" in resp.get_data(as_text=True)
    client.post(f"/admin/agents/{uid}/deactivate")
    db.session.expire_all()
    user = db.session.get(User, uid)
    assert user.active and user.roles == {"admin"}
    with pytest.raises(DomainError):
        accounts.deactivate(uid, uid)


def test_deactivate_blocks_login_and_api_then_reactivate(app, client, make, admin):
    agent = make.user(roles=["technical_support"])
    token = accounts.create_api_token(agent.id)
    db.session.commit()
    uid, email = agent.id, agent.email
    other = app.test_client()
    assert other.post("/login", data={"email": email, "password": PASSWORD}).status_code == 302
    assert other.get("/api/v1/tickets", headers={"Authorization": f"Bearer {token}"}).status_code == 200

    assert client.post(f"/admin/agents/{uid}/deactivate").status_code == 302
    db.session.expire_all()
    assert not db.session.get(User, uid).active
    assert db.session.get(User, uid) is not None  # never deleted
    assert other.get("/").status_code == 302  # the open session ends
    resp = other.post("/login", data={"email": email, "password": PASSWORD})
    assert resp.status_code == 200 and "Wrong email or password" in resp.get_data(as_text=True)
    assert other.get("/api/v1/tickets", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert "Deactivated" in client.get("/admin/agents").get_data(as_text=True)

    assert client.post(f"/admin/agents/{uid}/reactivate").status_code == 302
    assert other.post("/login", data={"email": email, "password": PASSWORD}).status_code == 302
    assert [e[0] for e in events("user", uid)] == ["deactivated", "reactivated"]


def test_admin_sends_a_password_reset(app, client, make, admin, run_jobs):
    agent = make.user(email="tech@example.com")
    db.session.commit()
    uid = agent.id
    assert client.post(f"/admin/agents/{uid}/send-reset").status_code == 302
    outbox = read_mail(run_jobs)
    assert [m.recipients for m in outbox] == [["tech@example.com"]]
    link = re.search(r"(/reset-password/\S+)", outbox[0].body).group(1)
    anon = app.test_client()
    assert anon.post(link, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}).status_code == 302
    assert accounts.authenticate("tech@example.com", NEW_PASSWORD) is not None
    assert "password_reset_sent" in [e[0] for e in events("user", uid)]


def test_resend_invite_only_before_a_password_is_set(app, client, make, admin, run_jobs):
    invited = make.user(password_hash=None, email="new@example.com")
    active = make.user(email="old@example.com")
    db.session.commit()
    client.post(f"/admin/agents/{invited.id}/resend-invite")
    resp = client.post(f"/admin/agents/{active.id}/resend-invite", follow_redirects=True)
    assert "already accepted" in resp.get_data(as_text=True)
    assert [m.recipients for m in read_mail(run_jobs)] == [["new@example.com"]]


def test_admin_resets_two_factor_for_a_lost_phone(app, client, make, admin):
    user = make.user(roles=["billing"], skip_2fa=False, totp_secret=pyotp.random_base32(), totp_enabled=True)
    db.session.commit()
    uid = user.id
    assert client.post(f"/admin/agents/{uid}/reset-2fa").status_code == 302
    db.session.expire_all()
    user = db.session.get(User, uid)
    assert not user.totp_enabled and user.totp_secret is None
    assert [e[0] for e in events("user", uid)] == ["2fa_reset"]
    resp = app.test_client().post("/login", data={"email": user.email, "password": PASSWORD})
    assert urlsplit(resp.headers["Location"]).path == "/login/2fa-setup"


# ---------------------------------------------------------------- queues

def test_add_queue_and_rejected_slug_keeps_input(app, client, admin):
    resp = client.post("/admin/queues", data={"slug": "Sales Team!", "name": "Sales team"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and 'value="Sales Team!"' in html and 'value="Sales team"' in html
    resp = client.post("/admin/queues", data={"slug": "sales", "name": "Sales"})
    assert resp.status_code == 302
    queue = db.session.execute(select(Queue)).scalar_one()
    assert (queue.slug, queue.name) == ("sales", "Sales")
    assert events("queue", queue.id) == [("created", None, "sales Sales")]
    resp = client.post("/admin/queues", data={"slug": "sales", "name": "Again"})
    assert resp.status_code == 400 and "exists already" in resp.get_data(as_text=True)
    assert "Sales" in client.get("/admin/queues").get_data(as_text=True)


def test_queue_lead_and_members(app, client, make, admin):
    queue = make.queue(name="Technical Support")
    bayu = make.user(name="Bayu Pratama")
    rina = make.user(name="Rina Susanti")
    db.session.commit()
    qid, bayu_id, rina_id = queue.id, bayu.id, rina.id

    assert client.post(f"/admin/queues/{qid}/members", data={"user": str(rina_id)}).status_code == 302
    assert client.post(f"/admin/queues/{qid}/lead", data={"lead": str(bayu_id)}).status_code == 302
    db.session.expire_all()
    queue = db.session.get(Queue, qid)
    assert queue.lead_id == bayu_id
    assert {u.id for u in queue.members} == {bayu_id, rina_id}  # the lead became a member
    page = client.get(f"/admin/queues/{qid}").get_data(as_text=True)
    assert "Bayu Pratama" in page and "Rina Susanti" in page

    assert client.post(f"/admin/queues/{qid}/members/{bayu_id}/remove").status_code == 302
    db.session.expire_all()
    queue = db.session.get(Queue, qid)
    assert queue.lead_id is None and {u.id for u in queue.members} == {rina_id}
    log = [e[0] for e in events("queue", qid)]
    assert log == ["member_added", "member_added", "lead", "lead", "member_removed"]
    assert client.post(f"/admin/queues/{qid}/lead", data={"lead": "0"}).status_code == 302


def test_members_of_a_queue_see_its_tickets(app, client, make, admin):
    """Membership set on the admin page is what ticket visibility uses."""
    queue = make.queue()
    agent = make.user(roles=["technical_support"])
    ticket = make.ticket(queue=queue)
    db.session.commit()
    agent_id, qid, ticket_id = agent.id, queue.id, ticket.id
    with pytest.raises(Exception):
        ticket_services.get_ticket_for(agent_id, ticket_id)
    db.session.rollback()
    client.post(f"/admin/queues/{qid}/members", data={"user": str(agent_id)})
    assert ticket_services.get_ticket_for(agent_id, ticket_id)[1].id == ticket_id


def test_deactivated_agent_cannot_be_added_to_a_queue(app, make, admin):
    queue = make.queue()
    gone = make.user(active=False)
    db.session.commit()
    with pytest.raises(DomainError):
        admin_services.add_member(queue.id, gone.id, admin.id)


# ---------------------------------------------------------------- canned responses

def test_canned_responses_add_edit_delete(app, client, make, admin):
    queue = make.queue(name="Billing")
    other = make.queue(name="Marketing")
    db.session.commit()
    qid, other_id = queue.id, other.id
    page = client.get(f"/admin/canned/new?queue={qid}").get_data(as_text=True)
    for placeholder in ("{customer_name}", "{ticket_number}", "{agent_name}"):
        assert placeholder in page

    body = "Halo {customer_name}, pembayaran untuk tiket #{ticket_number} sudah kami terima.\n\n{agent_name}"
    resp = client.post("/admin/canned/new", data={"queue": str(qid), "title": "Pembayaran diterima", "body": body})
    assert resp.status_code == 302
    canned = db.session.execute(select(CannedResponse)).scalar_one()
    cid = canned.id
    assert (canned.queue_id, canned.title, canned.body) == (qid, "Pembayaran diterima", body)
    listing = client.get(f"/admin/canned?queue={qid}").get_data(as_text=True)
    assert "Pembayaran diterima" in listing
    assert "Pembayaran diterima" not in client.get(f"/admin/canned?queue={other_id}").get_data(as_text=True)

    resp = client.post(f"/admin/canned/{cid}", data={"queue": "0", "title": "Terima kasih", "body": "Terima kasih, {agent_name}"})
    assert resp.status_code == 302
    db.session.expire_all()
    canned = db.session.get(CannedResponse, cid)
    assert canned.queue_id is None and canned.title == "Terima kasih"
    assert "Terima kasih" in client.get("/admin/canned?queue=0").get_data(as_text=True)

    assert client.post(f"/admin/canned/{cid}/delete").status_code == 302
    assert db.session.get(CannedResponse, cid) is None
    assert [e[0] for e in events("canned", cid)] == ["created", "updated", "deleted"]


def test_canned_response_with_unknown_placeholder_is_rejected_with_input_kept(app, client, make, admin):
    queue = make.queue()
    db.session.commit()
    resp = client.post("/admin/canned/new", data={"queue": str(queue.id), "title": "Salam",
                                                  "body": "Halo {customer}, tiket {ticket_number}"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "Unknown placeholder" in html and "{customer}" in html
    assert 'value="Salam"' in html and "Halo {customer}, tiket {ticket_number}</textarea>" in html
    assert not db.session.execute(select(CannedResponse.id)).first()


def test_canned_response_is_offered_filled_in_on_the_ticket(app, client, make, admin):
    queue = make.queue()
    ticket = make.ticket(queue=queue)
    db.session.commit()
    client.post("/admin/canned/new", data={"queue": str(queue.id), "title": "Greeting",
                                           "body": "Hi {customer_name}, about #{ticket_number}. {agent_name}"})
    user = db.session.get(User, admin.id)
    [(_, text)] = ticket_services.canned_for(ticket, user)
    assert text == f"Hi {ticket.customer.name}, about #{ticket.number}. Ani Admin"


# ---------------------------------------------------------------- jobs

def test_jobs_page_shows_queues_and_outbox_backlog(app, client, admin, run_jobs):
    enqueue("math.sqrt", -1, queue="default")  # fails: math domain error
    db.session.commit()
    run_jobs()
    row = db.session.execute(select(OutboxJob)).scalar_one()
    assert row.done_at is None and row.attempts == 1
    resp = client.get("/admin/jobs")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "math domain error" in html and "math.sqrt" in html
    assert "1 not finished" in html
    for name in ("mail", "sla", "default"):
        assert f"<td>{name}</td>" in html
