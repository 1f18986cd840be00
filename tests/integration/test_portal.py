"""The customer portal: magic-link sign-in, tickets, public thread, replies, solve/reopen, signed
ticket links, and isolation between customers (issue 3 §2-§3)."""
import io
import re
from html import unescape

import pytest
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import func, select

from helpdesk.extensions import db, mail
from helpdesk.jobs import OutboxJob
from helpdesk.portal import services as portal
from helpdesk.portal import tokens
from helpdesk.tickets import services
from helpdesk.tickets.models import Attachment, AuditEvent, Message, Ticket


def text_of(resp):
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", resp.get_data(as_text=True))).split())


def link_jobs():
    return db.session.execute(select(func.count()).select_from(OutboxJob)
                              .where(OutboxJob.func == "helpdesk.portal.jobs.send_sign_in_link")).scalar_one()


@pytest.fixture
def world(app, make):
    queue = make.queue(slug="technical-support", name="Technical Support")
    agent = make.user(roles=["technical_support"], queues=[queue], email="tech@example.com")
    dewi = make.customer(email="dewi@tokodewi.co.id", name="Dewi Lestari")
    budi = make.customer(email="budi@example.net", name="Budi Santoso")
    mine = make.ticket(queue=queue, customer=dewi, subject="Website saya mati", body="Tolong, situs mati.",
                       files=[("layar.png", "image/png", b"\x89PNG dewi")])
    theirs = make.ticket(queue=queue, customer=budi, subject="Rahasia Budi", body="Pesan pribadi Budi.",
                         files=[("budi.txt", "text/plain", b"budi secret file")])
    services.add_agent_message(mine.id, agent.id, body_text="Catatan internal: server 10.0.0.5", kind="note",
                               files=[("note.txt", "text/plain", b"internal only")])
    services.add_agent_message(mine.id, agent.id, body_text="Kami sedang memeriksa situs Anda.")
    db.session.commit()
    return {"queue": queue, "agent": agent, "dewi": dewi, "budi": budi, "mine": mine, "theirs": theirs}


def sign_in(client, customer_id):
    """Sign a customer in through a real link (GET shows, POST signs in)."""
    customer = portal.active_customer(customer_id)
    customer.login_nonce = customer.login_nonce or "n" * 32
    db.session.commit()
    token = tokens.make_sign_in_token(customer.id, customer.login_nonce)
    resp = client.post(f"/portal/login/{token}")
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/portal/")
    return token


def attachment_of(ticket_id, name):
    return db.session.execute(select(Attachment).where(Attachment.ticket_id == ticket_id,
                                                       Attachment.filename == name)).scalar_one()


# ---------------------------------------------------------------- magic link sign-in

def test_magic_link_signs_in_once_and_get_never_signs_in(app, client, world, run_jobs):
    dewi_id = world["dewi"].id
    world["dewi"].language = "en"
    db.session.commit()
    resp = client.post("/portal/login", data={"email": "  Dewi@TokoDewi.co.id "})
    assert resp.status_code == 200 and "If this address is known to us" in text_of(resp)
    assert link_jobs() == 1
    with mail.record_messages() as outbox:
        run_jobs()
    sent = [m for m in outbox if m.recipients == ["dewi@tokodewi.co.id"] and "/portal/login/" in m.body]
    assert len(sent) == 1 and "Hello Dewi Lestari" in sent[0].body and "30 minutes" in sent[0].body
    path = re.search(r"https?://[^/\s]+(/portal/login/\S+)", sent[0].body).group(1)
    # A mail scanner opening the link: a page with a button, nobody signed in, the link still good.
    page = client.get(path)
    assert page.status_code == 200 and "Press the button to sign in" in text_of(page)
    assert client.get("/portal/").status_code == 302
    resp = client.post(path)
    assert resp.status_code == 303
    home = client.get("/portal/")
    assert home.status_code == 200 and "Website saya mati" in text_of(home)
    db.session.expire_all()
    assert portal.active_customer(dewi_id).last_login_at is not None
    # Works once.
    other = app.test_client()
    again = other.post(path)
    assert again.status_code == 400 and "already used" in text_of(again)
    assert other.get("/portal/").status_code == 302


def test_same_answer_for_known_and_unknown_addresses(app, client, world):
    known = client.post("/portal/login", data={"email": "dewi@tokodewi.co.id"})
    unknown = client.post("/portal/login", data={"email": "nobody@example.org"})
    assert known.status_code == unknown.status_code == 200
    assert known.get_data() == unknown.get_data()
    assert link_jobs() == 1  # only the known address gets a mail


def test_expired_tampered_and_forged_links_are_refused(app_factory, world):
    app = app_factory(PORTAL_LINK_MAX_AGE=-1)
    with app.app_context():
        client = app.test_client()
        dewi = portal.active_customer(world["dewi"].id)
        dewi.login_nonce = "a" * 32
        db.session.commit()
        token = tokens.make_sign_in_token(dewi.id, dewi.login_nonce)
        resp = client.post(f"/portal/login/{token}")
        assert resp.status_code == 400 and "expired" in text_of(resp)
    app = app_factory()
    with app.app_context():
        client = app.test_client()
        token = tokens.make_sign_in_token(world["dewi"].id, "a" * 32)
        forged = URLSafeTimedSerializer("another-secret", salt=tokens.SIGN_IN_SALT).dumps(
            {"c": world["dewi"].id, "n": "a" * 32})
        wrong_nonce = tokens.make_sign_in_token(world["dewi"].id, "b" * 32)
        for bad in (token[:-3] + "xyz", forged, wrong_nonce):
            for method in (client.get, client.post):
                resp = method(f"/portal/login/{bad}")
                assert resp.status_code == 400 and "Sign in" not in text_of(resp).split("Ask")[0][-20:]
        assert client.get("/portal/").status_code == 302
        assert client.post(f"/portal/login/{token}").status_code == 303  # the genuine one still works


def test_request_link_rate_limits_per_ip_and_per_email(app_factory, world):
    app = app_factory(PORTAL_LINK_RATE_LIMIT="2 per hour", PORTAL_LINK_EMAIL_RATE_LIMIT="50 per hour")
    with app.app_context():
        client = app.test_client()
        for i in range(2):
            assert client.post("/portal/login", data={"email": f"x{i}@example.org"}).status_code == 200
        resp = client.post("/portal/login", data={"email": "dewi@tokodewi.co.id"})
        assert resp.status_code == 429 and "Too many sign-in links" in text_of(resp)
        assert link_jobs() == 0
        other = app.test_client()
        other.environ_base["REMOTE_ADDR"] = "198.51.100.9"
        assert other.post("/portal/login", data={"email": "dewi@tokodewi.co.id"}).status_code == 200
        assert link_jobs() == 1
    app = app_factory(PORTAL_LINK_RATE_LIMIT="50 per hour", PORTAL_LINK_EMAIL_RATE_LIMIT="1 per hour")
    with app.app_context():
        first, second = app.test_client(), app.test_client()
        second.environ_base["REMOTE_ADDR"] = "198.51.100.10"
        assert first.post("/portal/login", data={"email": "budi@example.net"}).status_code == 200
        resp = second.post("/portal/login", data={"email": "Budi@Example.net"})
        assert resp.status_code == 429
        assert second.post("/portal/login", data={"email": "someone@example.org"}).status_code == 200


# ---------------------------------------------------------------- pages

def test_ticket_list_and_page_show_the_public_thread_only(app, client, world, make):
    closed = make.ticket(queue=world["queue"], customer=world["dewi"], subject="Tagihan lama")
    services.change_status(closed.id, world["agent"].id, "closed")
    db.session.commit()
    sign_in(client, world["dewi"].id)
    home = text_of(client.get("/portal/"))
    assert "Website saya mati" in home and "We are working on it" in home
    assert "Kami sedang memeriksa situs Anda." in home  # latest reply preview
    assert "Closed (1)" in home and "Tagihan lama" in home
    assert "Rahasia Budi" not in home
    page = client.get(f"/portal/tickets/{world['mine'].number}")
    body = text_of(page)
    assert page.status_code == 200 and "Tolong, situs mati." in body and "Kami sedang memeriksa" in body
    assert "Catatan internal" not in body and "note.txt" not in body and "10.0.0.5" not in body
    own = attachment_of(world["mine"].id, "layar.png")
    resp = client.get(f"/portal/attachments/{own.id}")
    assert resp.status_code == 200 and resp.data == b"\x89PNG dewi"
    assert resp.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert "attachment" in resp.headers["Content-Disposition"]
    note = attachment_of(world["mine"].id, "note.txt")
    resp = client.get(f"/portal/attachments/{note.id}")
    assert resp.status_code == 404 and b"internal only" not in resp.data


def test_reply_with_attachment_resumes_pending_customer_and_reaches_the_agent(app, client, world):
    mine = world["mine"]
    services.change_status(mine.id, world["agent"].id, "pending_customer")
    db.session.commit()
    sign_in(client, world["dewi"].id)
    resp = client.post(f"/portal/tickets/{mine.number}/reply",
                       data={"body": "Sudah saya coba, masih mati.",
                             "attachments": [(io.BytesIO(b"log isi"), "error.log")]},
                       content_type="multipart/form-data")
    assert resp.status_code == 303
    db.session.expire_all()
    ticket = db.session.get(Ticket, mine.id)
    assert ticket.status == "open"
    msg = db.session.execute(select(Message).where(Message.ticket_id == mine.id).order_by(Message.id.desc())
                             ).scalars().first()
    assert msg.author_customer_id == world["dewi"].id and msg.channel == "web"
    assert [a.filename for a in msg.attachments] == ["error.log"]
    assert "Your message was sent." in text_of(client.get(resp.headers["Location"]))
    desk = app.test_client()
    assert desk.post("/login", data={"email": "tech@example.com", "password": "correct-horse-battery"}
                     ).status_code == 302
    page = text_of(desk.get(f"/tickets/{mine.number}"))
    assert "Sudah saya coba, masih mati." in page and "error.log" in page
    assert "Last reached us by: Web form" in page


def test_empty_reply_is_refused_and_nothing_is_added(app, client, world):
    sign_in(client, world["dewi"].id)
    before = world["mine"].message_count
    resp = client.post(f"/portal/tickets/{world['mine'].number}/reply", data={"body": "  "})
    assert resp.status_code == 400 and "Please write a message." in text_of(resp)
    db.session.expire_all()
    assert db.session.get(Ticket, world["mine"].id).message_count == before


def test_solve_and_reopen_are_audited_as_the_customer(app, client, world):
    mine = world["mine"]
    sign_in(client, world["dewi"].id)
    assert client.post(f"/portal/tickets/{mine.number}/reopen").status_code == 303  # not resolved: refused
    db.session.expire_all()
    assert db.session.get(Ticket, mine.id).status == "open"
    assert client.post(f"/portal/tickets/{mine.number}/solved").status_code == 303
    db.session.expire_all()
    assert db.session.get(Ticket, mine.id).status == "resolved"
    assert client.post(f"/portal/tickets/{mine.number}/reopen").status_code == 303
    db.session.expire_all()
    assert db.session.get(Ticket, mine.id).status == "open"
    events = db.session.execute(select(AuditEvent).where(AuditEvent.ticket_id == mine.id,
                                                         AuditEvent.action == "status",
                                                         AuditEvent.actor_customer_id == world["dewi"].id)
                                .order_by(AuditEvent.id)).scalars().all()
    assert [(e.old_value, e.new_value) for e in events] == [("open", "resolved"), ("resolved", "open")]
    assert all(e.actor_user_id is None for e in events)


def test_a_reply_on_a_closed_ticket_opens_a_linked_one(app, client, world):
    services.change_status(world["mine"].id, world["agent"].id, "closed")
    db.session.commit()
    sign_in(client, world["dewi"].id)
    resp = client.post(f"/portal/tickets/{world['mine'].number}/reply", data={"body": "Masalah muncul lagi."})
    assert resp.status_code == 303
    new = db.session.execute(select(Ticket).where(Ticket.linked_ticket_id == world["mine"].id)).scalar_one()
    assert resp.headers["Location"].endswith(f"/portal/tickets/{new.number}")
    assert new.customer_id == world["dewi"].id and new.channel == "web"


# ---------------------------------------------------------------- isolation

def portal_urls(world, make_token=True):
    theirs = world["theirs"]
    att = attachment_of(theirs.id, "budi.txt")
    return [("GET", f"/portal/tickets/{theirs.number}"), ("POST", f"/portal/tickets/{theirs.number}/reply"),
            ("POST", f"/portal/tickets/{theirs.number}/solved"), ("POST", f"/portal/tickets/{theirs.number}/reopen"),
            ("GET", f"/portal/attachments/{att.id}")]


def test_a_customer_never_reaches_another_customers_ticket_message_or_attachment(app, client, world):
    sign_in(client, world["dewi"].id)
    theirs = world["theirs"]
    for method, url in portal_urls(world):
        resp = client.open(url, method=method, data={"body": "Saya bukan Budi"})
        assert resp.status_code == 404, url
        assert b"Rahasia Budi" not in resp.data and b"budi secret file" not in resp.data
        assert b"Pesan pribadi" not in resp.data
    # Dewi's signed link cannot open Budi's attachment either.
    token = tokens.make_ticket_token(world["dewi"].id, world["mine"].id)
    att = attachment_of(theirs.id, "budi.txt")
    assert client.get(f"/portal/t/{token}/attachments/{att.id}").status_code == 404
    # A link naming Dewi and Budi's ticket is refused.
    mixed = tokens.make_ticket_token(world["dewi"].id, theirs.id)
    for method, url in [("GET", f"/portal/t/{mixed}"), ("POST", f"/portal/t/{mixed}/reply"),
                        ("POST", f"/portal/t/{mixed}/solved"), ("GET", f"/portal/t/{mixed}/attachments/{att.id}")]:
        resp = client.open(url, method=method, data={"body": "x"})
        assert resp.status_code == 404 and b"Rahasia Budi" not in resp.data, url
    db.session.expire_all()
    t = db.session.get(Ticket, theirs.id)
    assert t.status == "new" and t.message_count == 1


def test_b2b_contacts_see_their_organisations_tickets_only_when_shared(app, client, world, make):
    org = make.organisation()
    colleague = make.customer(email="ani@pt-maju.co.id", name="Ani")
    for c in (world["budi"], colleague):
        c.organisation_id = org.id
    db.session.commit()
    sign_in(client, colleague.id)
    assert client.get(f"/portal/tickets/{world['theirs'].number}").status_code == 404
    assert "Rahasia Budi" not in text_of(client.get("/portal/"))
    org.contacts_see_all_tickets = True
    db.session.commit()
    assert "Rahasia Budi" in text_of(client.get("/portal/"))
    assert client.get(f"/portal/tickets/{world['theirs'].number}").status_code == 200
    att = attachment_of(world["theirs"].id, "budi.txt")
    assert client.get(f"/portal/attachments/{att.id}").data == b"budi secret file"
    # Reading is shared; answering stays with the person who opened it.
    assert client.post(f"/portal/tickets/{world['theirs'].number}/reply", data={"body": "Halo"}).status_code == 403
    assert client.get(f"/portal/tickets/{world['mine'].number}").status_code == 404


# ---------------------------------------------------------------- desk and portal stay apart

def test_a_customer_is_anonymous_on_the_desk_and_an_agent_is_refused_on_the_portal(app, client, world):
    sign_in(client, world["dewi"].id)
    for url in ("/", f"/tickets/{world['mine'].number}", "/customers/", "/admin/"):
        resp = client.get(url)
        assert resp.status_code == 302 and "/login" in resp.headers["Location"], url
    assert client.get("/portal/").status_code == 200
    desk = app.test_client()
    assert desk.post("/login", data={"email": "tech@example.com", "password": "correct-horse-battery"}
                     ).status_code == 302
    assert desk.get("/").status_code == 200
    for url in ("/portal/", f"/portal/tickets/{world['mine'].number}"):
        assert desk.get(url).status_code == 403, url


# ---------------------------------------------------------------- signed ticket links

def test_signed_ticket_link_shows_without_login_and_acts_on_post(app, client, world):
    mine = world["mine"]
    url = tokens.ticket_link_url(world["dewi"].id, mine.id)
    assert url.startswith(app.config["BASE_URL"])
    path = url[len(app.config["BASE_URL"].rstrip("/")):]
    page = client.get(path)
    assert page.status_code == 200 and "Kami sedang memeriksa situs Anda." in text_of(page)
    assert "Catatan internal" not in text_of(page)
    db.session.expire_all()
    assert db.session.get(Ticket, mine.id).status == "open"  # a GET changed nothing
    assert client.get("/portal/").status_code == 302  # and signed nobody in
    own = attachment_of(mine.id, "layar.png")
    assert client.get(f"{path}/attachments/{own.id}").data == b"\x89PNG dewi"
    resp = client.post(f"{path}/reply", data={"body": "Terima kasih, lewat tautan."})
    assert resp.status_code == 303 and resp.headers["Location"].endswith(path)
    assert client.post(f"{path}/solved").status_code == 303
    db.session.expire_all()
    t = db.session.get(Ticket, mine.id)
    assert t.status == "resolved" and "lewat tautan" in t.last_message_preview


def test_signed_ticket_link_expires_and_cannot_be_tampered_with(app_factory, world):
    app = app_factory(PORTAL_TICKET_LINK_MAX_AGE=-1)
    with app.app_context():
        token = tokens.make_ticket_token(world["dewi"].id, world["mine"].id)
        resp = app.test_client().get(f"/portal/t/{token}")
        assert resp.status_code == 400 and "expired" in text_of(resp)
        assert "Website saya mati" not in text_of(resp)
    app = app_factory()
    with app.app_context():
        token = tokens.make_ticket_token(world["dewi"].id, world["mine"].id)
        resp = app.test_client().post(f"/portal/t/{token[:-3]}xyz/solved")
        assert resp.status_code == 400
        db.session.expire_all()
        assert db.session.get(Ticket, world["mine"].id).status == "open"


# ---------------------------------------------------------------- profile

def test_profile_edits_name_phone_and_language(app, client, world):
    sign_in(client, world["dewi"].id)
    page = client.get("/portal/profile")
    assert page.status_code == 200 and "dewi@tokodewi.co.id" in text_of(page)
    resp = client.post("/portal/profile", data={"name": "Dewi L.", "phone": "0812-3456-7890", "language": "en"})
    assert resp.status_code == 303
    db.session.expire_all()
    dewi = portal.active_customer(world["dewi"].id)
    assert (dewi.name, dewi.phone, dewi.language) == ("Dewi L.", "+6281234567890", "en")
    resp = client.post("/portal/profile", data={"name": "Dewi", "phone": "bukan nomor", "language": "en"})
    assert resp.status_code == 400 and "is not a phone number" in text_of(resp)
    db.session.expire_all()
    assert portal.active_customer(world["dewi"].id).name == "Dewi L."


def confirmation_jobs():
    return db.session.execute(select(func.count()).select_from(OutboxJob)
                              .where(OutboxJob.func == "helpdesk.portal.jobs.send_email_confirmation")).scalar_one()


def test_a_new_address_is_added_only_after_confirming(app, client, world, run_jobs):
    dewi_id = world["dewi"].id
    sign_in(client, dewi_id)
    resp = client.post("/portal/profile/emails", data={"email": "Dewi.Kantor@Example.org"})
    assert resp.status_code == 303
    assert "We sent a confirmation link to dewi.kantor@example.org" in text_of(client.get("/portal/profile"))
    assert "dewi.kantor@example.org" not in [e.email for e in portal.active_customer(dewi_id).emails]
    # Another customer's address: the same answer, no mail, nothing added.
    client.post("/portal/profile/emails", data={"email": "budi@example.net"})
    assert "We sent a confirmation link to budi@example.net" in text_of(client.get("/portal/profile"))
    assert confirmation_jobs() == 1
    with mail.record_messages() as outbox:
        run_jobs()
    sent = [m for m in outbox if m.recipients == ["dewi.kantor@example.org"]]
    assert len(sent) == 1
    path = re.search(r"https?://[^/\s]+(/portal/profile/emails/\S+)", sent[0].body).group(1)
    page = app.test_client().get(path)  # a mail scanner: shows a button, adds nothing
    assert page.status_code == 200 and "dewi.kantor@example.org" in text_of(page)
    db.session.expire_all()
    assert len(portal.active_customer(dewi_id).emails) == 1
    assert app.test_client().post(path).status_code == 303
    db.session.expire_all()
    emails = {e.email: e for e in portal.active_customer(dewi_id).emails}
    assert emails["dewi.kantor@example.org"].verified_at is not None
    assert not emails["dewi.kantor@example.org"].is_primary
    assert app.test_client().post(path).status_code == 303  # confirming twice changes nothing
    db.session.expire_all()
    assert len(portal.active_customer(dewi_id).emails) == 2
    # A link (genuine or not) for an address someone else owns never moves it.
    stolen = tokens.make_email_token(dewi_id, "budi@example.net")
    assert app.test_client().post(f"/portal/profile/emails/{stolen}").status_code == 400
    assert app.test_client().post(f"/portal/profile/emails/{stolen[:-3]}xyz").status_code == 400
    db.session.expire_all()
    assert len(portal.active_customer(dewi_id).emails) == 2


def test_portal_is_indonesian_by_default_and_english_one_click_away(app, world):
    from flask.testing import FlaskClient

    browser = FlaskClient(app, app.response_class, use_cookies=True)  # no Accept-Language
    page = text_of(browser.get("/portal/login"))
    assert "Pantau permintaan Anda" in page and "Kirimi saya tautan masuk" in page
    assert "Follow your requests" in text_of(browser.get("/portal/login?lang=en"))
    sign_in(browser, world["dewi"].id)
    home = text_of(browser.get("/portal/?lang=id"))
    assert "Permintaan saya" in home and "Sedang kami kerjakan" in home


# ---------------------------------------------------------------- optional password

def test_optional_password_sign_in(app, client, world):
    dewi_id = world["dewi"].id
    bad = client.post("/portal/login/password", data={"email": "dewi@tokodewi.co.id", "password": "x" * 12})
    assert bad.status_code == 400 and "email address or password is not right" in text_of(bad)  # no password set
    sign_in(client, dewi_id)
    short = client.post("/portal/profile/password", data={"password": "pendek"})
    assert short.status_code == 400 and "at least 10 characters" in text_of(short)
    assert client.post("/portal/profile/password", data={"password": "kata-sandi-dewi-123"}).status_code == 303
    assert "Your password was saved." in text_of(client.get("/portal/profile"))
    db.session.expire_all()
    assert portal.active_customer(dewi_id).password_hash not in (None, "kata-sandi-dewi-123")
    client.post("/portal/logout")
    assert client.get("/portal/").status_code == 302
    answers = []
    for email, password in (("dewi@tokodewi.co.id", "salah-sandi-12345"),
                            ("nobody@example.org", "kata-sandi-dewi-123"), ("budi@example.net", "kata-sandi-dewi-123")):
        resp = client.post("/portal/login/password", data={"email": email, "password": password})
        assert resp.status_code == 400
        answers.append(re.sub(r'value="[^"]*"', "", resp.get_data(as_text=True)))
    assert answers[0] == answers[1] == answers[2]  # wrong password, unknown address, no password: one answer
    resp = client.post("/portal/login/password",
                       data={"email": "Dewi@TokoDewi.co.id", "password": "kata-sandi-dewi-123"})
    assert resp.status_code == 303
    assert "Website saya mati" in text_of(client.get("/portal/"))
    # Removing the password: magic links only again.
    assert client.post("/portal/profile/password", data={"password": ""}).status_code == 303
    db.session.expire_all()
    assert portal.active_customer(dewi_id).password_hash is None


def test_password_failures_are_limited_per_address(app_factory, world):
    app = app_factory(PORTAL_PASSWORD_RATE_LIMIT="3 per hour")
    with app.app_context():
        portal.set_password(world["dewi"].id, "kata-sandi-dewi-123")
        db.session.commit()
        for i in range(3):
            c = app.test_client()
            c.environ_base["REMOTE_ADDR"] = f"198.51.100.{20 + i}"
            assert c.post("/portal/login/password", data={"email": "dewi@tokodewi.co.id",
                                                           "password": "salah-salah-salah"}).status_code == 400
        c = app.test_client()
        c.environ_base["REMOTE_ADDR"] = "198.51.100.40"
        resp = c.post("/portal/login/password",
                      data={"email": "dewi@tokodewi.co.id", "password": "kata-sandi-dewi-123"})
        assert resp.status_code == 429 and "Too many failed sign-in attempts" in text_of(resp)
        assert c.get("/portal/").status_code == 302
