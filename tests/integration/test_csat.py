"""What the customer sees and says (issue #5 §5): the expected first answer in the acknowledgement
(mail and web form), and CSAT — the question after each resolution, signed answer links (GET shows,
POST records), one answer per cycle replaced by a later one, the lead told once of a bad answer,
the portal's question and the agent's view of the answer.

The default policy (office calendar, Mon-Fri 08-17 WIB; normal priority: first response in 240
business minutes) is seeded by tests/conftest.py.
"""
import re
from datetime import datetime, timedelta
from html import unescape

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from helpdesk.extensions import db, mail
from helpdesk.jobs import OutboxJob
from helpdesk.mail import outbound
from helpdesk.mail.models import OutboundMail
from helpdesk.portal import tokens as portal_tokens
from helpdesk.sla import csat
from helpdesk.sla.models import CsatResponse, Notification
from helpdesk.tickets import services
from helpdesk.tickets.models import Ticket
from helpdesk.webform.tokens import InvalidToken
from tests.conftest import extract_csrf


def wib(*args):
    """A WIB wall time as the naive UTC the database stores."""
    return datetime(*args) - timedelta(hours=7)


def text_of(resp):
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", resp.get_data(as_text=True))).split())


@pytest.fixture
def world(app, make):
    queue = make.queue(slug="technical-support", name="Technical Support")
    agent = make.user(roles=["technical_support"], queues=[queue], email="tech@example.com", name="Rina")
    lead = make.user(roles=["technical_support"], queues=[queue], email="lead@example.com", name="Lia Lead")
    queue.lead_id = lead.id
    dewi = make.customer(email="dewi@tokodewi.co.id", name="Dewi Lestari", language="id")
    jane = make.customer(email="jane@example.com", name="Jane Doe", language="en")
    budi = make.customer(email="budi@example.net", name="Budi Santoso", language="id")
    db.session.commit()
    return {"queue": queue, "agent": agent, "lead": lead, "dewi": dewi, "jane": jane, "budi": budi}


def new_ticket(world, customer="dewi", now=None, subject="Website saya mati"):
    t = services.create_ticket(customer_id=world[customer].id, subject=subject, body_text="Tolong.",
                               channel="email", queue_id=world["queue"].id, now=now)
    db.session.commit()
    return t


def resolve(world, ticket, now=None):
    services.change_status(ticket.id, world["agent"].id, "resolved", now=now)
    db.session.commit()


def mails(kind, ticket_id=None):
    q = select(OutboundMail).where(OutboundMail.kind == kind).order_by(OutboundMail.id)
    if ticket_id is not None:
        q = q.where(OutboundMail.ticket_id == ticket_id)
    return db.session.execute(q).scalars().all()


def sent(run_jobs):
    with mail.record_messages() as box:
        run_jobs()
    return box


def csat_links(body):
    return re.findall(r"https?://\S+?(/portal/csat/[A-Za-z0-9._-]+)", body)


def rows(ticket_id):
    return db.session.execute(select(CsatResponse).where(CsatResponse.ticket_id == ticket_id)
                              .order_by(CsatResponse.cycle)).scalars().all()


def bad_notifications(ticket_id):
    return db.session.execute(select(Notification).where(Notification.ticket_id == ticket_id,
                                                         Notification.kind == "csat_bad")).scalars().all()


# ---------------------------------------------------------------- the expected first answer

def test_acknowledgement_mail_states_the_expected_first_answer_in_the_customers_words(app, world, run_jobs):
    # Monday 7 Dec 2026 09:00 WIB + 240 business minutes -> 13:00 WIB
    t_id = new_ticket(world, "dewi", now=wib(2026, 12, 7, 9, 0))
    t_en = new_ticket(world, "jane", now=wib(2026, 12, 7, 9, 0), subject="Site down")
    assert t_id.first_response_due == wib(2026, 12, 7, 13, 0)
    for t in (t_id, t_en):
        outbound.queue_acknowledgement(t.id)
    db.session.commit()
    box = {m.recipients[0]: m for m in sent(run_jobs)}
    dewi, jane = box["dewi@tokodewi.co.id"], box["jane@example.com"]
    assert "jawaban pertama kami paling lambat Senin, 7 Desember 2026, 13.00 WIB" in dewi.body
    assert "Senin, 7 Desember 2026, 13.00 WIB" in dewi.html
    assert "biasanya dalam satu hari kerja" not in dewi.body
    assert "You can expect our first answer by Monday, 7 December 2026, 13:00 WIB." in jane.body
    assert "Monday, 7 December 2026, 13:00 WIB" in jane.html


def test_acknowledgement_without_a_policy_omits_the_sentence(app, world, run_jobs):
    t = new_ticket(world, "dewi", now=wib(2026, 12, 7, 9, 0))
    t.sla_policy_id, t.first_response_due = None, None  # a ticket no policy applies to
    outbound.queue_acknowledgement(t.id)
    db.session.commit()
    [ack] = [m for m in sent(run_jobs) if m.recipients == ["dewi@tokodewi.co.id"]]
    assert "paling lambat" not in ack.body and "WIB" not in ack.body
    assert "biasanya dalam satu hari kerja" in ack.body


def test_web_form_confirmation_page_states_the_expected_first_answer(app, client, world):
    data = {"name": "Jane", "email": "jane.web@example.com", "topic": "website",
            "subject": "Cannot log in", "message": "The login page says error 500."}
    resp = client.post("/form", data=data)
    assert resp.status_code == 303, text_of(resp)[:500]
    page = client.get(resp.headers["Location"])
    ticket = db.session.execute(select(Ticket).order_by(Ticket.id.desc()).limit(1)).scalar_one()
    assert ticket.first_response_due is not None
    when = csat.expected_first_answer(ticket, "en")
    assert when.endswith(" WIB") and when.startswith(("Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
                                                      "Saturday"))
    assert f"You can expect our first answer by {when}." in text_of(page)
    indonesian = FlaskClient(app, app.response_class, use_cookies=True)  # no Accept-Language: Indonesian
    page_id = indonesian.get(resp.headers["Location"].replace("lang=en", "lang=id"))
    assert csat.expected_first_answer(ticket, "id") in text_of(page_id)


# ---------------------------------------------------------------- the question by mail

def test_resolving_queues_exactly_one_csat_mail_with_two_signed_links(app, world, run_jobs):
    t = new_ticket(world)
    resolve(world, t)
    [row] = mails("csat", t.id)
    assert (row.to_addrs, row.locale, row.automatic) == (["dewi@tokodewi.co.id"], "id", True)
    assert "Bagaimana layanan kami?" in row.subject
    jobs_args = db.session.execute(select(OutboxJob.args).where(OutboxJob.func == "helpdesk.mail.jobs.send_outbound")
                                   ).scalars().all()
    assert [row.id, {"cycle": 1}] in [list(a) for a in jobs_args]
    tid, dewi, agent = t.id, world["dewi"].id, world["agent"].id
    [msg] = [m for m in sent(run_jobs) if "Bagaimana" in m.subject]
    good, bad = csat_links(msg.body)
    assert csat.load_token(good.rsplit("/", 1)[1]) == (dewi, tid, 1, "good")
    assert csat.load_token(bad.rsplit("/", 1)[1]) == (dewi, tid, 1, "bad")
    assert good in msg.html and bad in msg.html
    # another status change (closing the resolved ticket) asks nothing more
    services.change_status(tid, agent, "closed")
    db.session.commit()
    assert len(mails("csat", tid)) == 1


def test_get_shows_the_question_preselected_and_records_nothing(app, client, world):
    t = new_ticket(world)
    resolve(world, t)
    token = csat.make_token(world["dewi"].id, t.id, 1, "bad")
    for _ in range(2):  # a mail scanner, then the customer
        page = client.get(f"/portal/csat/{token}")
        assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "How did we do?" in html and f"#{t.number}" in html
    assert re.search(r'<input[^>]*checked[^>]*value="bad"|<input[^>]*value="bad"[^>]*checked', html)
    assert not re.search(r'<input[^>]*checked[^>]*value="good"|<input[^>]*value="good"[^>]*checked', html)
    assert rows(t.id) == []


def test_post_records_then_a_bad_answer_replaces_it_and_tells_the_lead_once(app, client, world, run_jobs):
    t = new_ticket(world)
    resolve(world, t)
    token = csat.make_token(world["dewi"].id, t.id, 1, "good")
    resp = client.post(f"/portal/csat/{token}", data={"rating": "good", "comment": ""})
    assert resp.status_code == 303
    [row] = rows(t.id)
    assert (row.rating, row.comment, row.cycle, row.customer_id, row.queue_id) == \
        ("good", None, 1, world["dewi"].id, world["queue"].id)
    assert bad_notifications(t.id) == [] and mails("csat_bad") == []
    first_created = row.created_at

    resp = client.post(f"/portal/csat/{token}", data={"rating": "bad", "comment": "Lambat sekali"})
    assert resp.status_code == 303
    db.session.expire_all()
    [row] = rows(t.id)
    assert (row.rating, row.comment) == ("bad", "Lambat sekali")
    assert row.created_at == first_created and row.updated_at >= first_created
    [note] = bad_notifications(t.id)
    assert note.user_id == world["lead"].id and "Lambat sekali" in note.body and str(t.number) in note.body
    [lead_mail] = mails("csat_bad")
    assert lead_mail.to_addrs == ["lead@example.com"] and lead_mail.user_id == world["lead"].id

    # the customer sends bad again (and even changes their mind twice): the lead is told once
    client.post(f"/portal/csat/{token}", data={"rating": "bad", "comment": "Masih lambat"})
    client.post(f"/portal/csat/{token}", data={"rating": "good"})
    client.post(f"/portal/csat/{token}", data={"rating": "bad"})
    db.session.expire_all()
    assert len(rows(t.id)) == 1 and rows(t.id)[0].rating == "bad"
    assert len(bad_notifications(t.id)) == 1 and len(mails("csat_bad")) == 1
    number = t.number
    [msg] = [m for m in sent(run_jobs) if m.recipients == ["lead@example.com"] and "Penilaian buruk" in m.subject]
    assert "Lambat sekali" in msg.body and f"#{number}" in msg.body

    # the page now shows the answer, editable
    page = text_of(client.get(f"/portal/csat/{token}"))
    assert "Your answer: Bad" in page and "Change my answer" in page


def test_a_post_without_a_rating_records_nothing(app, client, world):
    t = new_ticket(world)
    resolve(world, t)
    token = csat.make_token(world["dewi"].id, t.id, 1)
    resp = client.post(f"/portal/csat/{token}", data={"comment": "hmm"})
    assert resp.status_code == 400 and "Please choose good or bad." in text_of(resp)
    assert rows(t.id) == []


def test_csrf_is_required_and_the_form_carries_it(csrf_app, world):
    client = csrf_app.test_client()
    t = new_ticket(world)
    resolve(world, t)
    token = csat.make_token(world["dewi"].id, t.id, 1, "good")
    assert client.post(f"/portal/csat/{token}", data={"rating": "good"}).status_code == 400
    assert rows(t.id) == []
    csrf = extract_csrf(client.get(f"/portal/csat/{token}").get_data(as_text=True))
    assert csrf
    assert client.post(f"/portal/csat/{token}", data={"rating": "good", "csrf_token": csrf}).status_code == 303
    assert [r.rating for r in rows(t.id)] == ["good"]


def test_tokens_for_another_ticket_or_customer_tampered_or_expired_are_refused(app, client, world):
    t = new_ticket(world)
    other = new_ticket(world, "budi", subject="Rahasia Budi")
    open_one = new_ticket(world, subject="Belum selesai")
    resolve(world, t)
    resolve(world, other)
    dewi = world["dewi"].id
    # Dewi's customer id with Budi's ticket, Budi's id with Dewi's ticket: not found
    for token in (csat.make_token(dewi, other.id, 1), csat.make_token(world["budi"].id, t.id, 1)):
        assert client.get(f"/portal/csat/{token}").status_code == 404
        assert client.post(f"/portal/csat/{token}", data={"rating": "bad"}).status_code == 404
    # a cycle that has not happened, a ticket never resolved
    assert client.get(f"/portal/csat/{csat.make_token(dewi, t.id, 2)}").status_code == 404
    assert client.get(f"/portal/csat/{csat.make_token(dewi, open_one.id, 1)}").status_code == 404
    # tampered: the payload changed, or a token of another kind (the portal's ticket link)
    good = csat.make_token(dewi, t.id, 1)
    _payload, rest = good.split(".", 1)
    forged = csat.make_token(dewi, other.id, 1).split(".", 1)[0] + "." + rest
    for token in (forged, good[:-2] + ("AA" if not good.endswith("AA") else "BB"),
                  portal_tokens.make_ticket_token(dewi, t.id)):
        resp = client.post(f"/portal/csat/{token}", data={"rating": "bad"})
        assert resp.status_code == 400 and "not valid" in text_of(resp)
    # expired
    with pytest.raises(InvalidToken) as exc:
        csat.load_token(good, max_age=-1)
    assert exc.value.expired
    app.config["CSAT_LINK_MAX_AGE"] = -1
    try:
        resp = client.post(f"/portal/csat/{good}", data={"rating": "bad"})
        assert resp.status_code == 400 and "expired" in text_of(resp)
    finally:
        app.config["CSAT_LINK_MAX_AGE"] = csat.DEFAULT_LINK_MAX_AGE
    db.session.expire_all()
    assert db.session.execute(select(func.count()).select_from(CsatResponse)).scalar_one() == 0
    assert client.post(f"/portal/csat/{good}", data={"rating": "good"}).status_code == 303  # the genuine one works


def test_reopen_and_resolve_again_is_a_new_cycle_with_its_own_question_and_answer(app, client, world, run_jobs):
    t = new_ticket(world)
    resolve(world, t)
    first = csat.make_token(world["dewi"].id, t.id, 1)
    client.post(f"/portal/csat/{first}", data={"rating": "bad", "comment": "Pertama"})
    services.change_status(t.id, world["agent"].id, "open")
    db.session.commit()
    resolve(world, t)
    q1, q2 = mails("csat", t.id)
    second_args = db.session.execute(select(OutboxJob.args).where(OutboxJob.func == "helpdesk.mail.jobs.send_outbound")
                                     ).scalars().all()
    assert [q2.id, {"cycle": 2}] in [list(a) for a in second_args]
    tid, dewi = t.id, world["dewi"].id
    links = [csat_links(m.body) for m in sent(run_jobs) if "Bagaimana" in m.subject]
    assert {csat.load_token(ls[0].rsplit("/", 1)[1])[2] for ls in links} == {1, 2}
    second = csat.make_token(dewi, tid, 2)
    client.post(f"/portal/csat/{second}", data={"rating": "bad", "comment": "Kedua"})
    db.session.expire_all()
    assert [(r.cycle, r.rating, r.comment) for r in rows(tid)] == [(1, "bad", "Pertama"), (2, "bad", "Kedua")]
    assert len(bad_notifications(tid)) == 2  # one per cycle
    # the first cycle's link still edits the first cycle's answer only
    client.post(f"/portal/csat/{first}", data={"rating": "good", "comment": "Sudah beres"})
    db.session.expire_all()
    assert [(r.cycle, r.rating) for r in rows(tid)] == [(1, "good"), (2, "bad")]


# ---------------------------------------------------------------- the portal and the agent

def sign_in(client, customer):
    from helpdesk.portal import services as portal

    c = portal.active_customer(customer.id)
    c.login_nonce = c.login_nonce or "n" * 32
    db.session.commit()
    resp = client.post(f"/portal/login/{portal_tokens.make_sign_in_token(c.id, c.login_nonce)}")
    assert resp.status_code == 303


def test_portal_shows_the_question_on_the_customers_own_resolved_ticket(app, client, world):
    t = new_ticket(world)
    still_open = new_ticket(world, subject="Masih dikerjakan")
    resolve(world, t)
    sign_in(client, world["dewi"])
    page = client.get(f"/portal/tickets/{t.number}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'id="csat-form"' in html and "How did we do?" in html
    assert 'id="csat-form"' not in client.get(f"/portal/tickets/{still_open.number}").get_data(as_text=True)
    action = re.search(r'action="(/portal/csat/[^"]+)"', html).group(1)
    assert client.post(action, data={"rating": "good", "comment": "Cepat, terima kasih"}).status_code == 303
    assert [(r.rating, r.comment) for r in rows(t.id)] == [("good", "Cepat, terima kasih")]
    page = text_of(client.get(f"/portal/tickets/{t.number}"))
    assert "Your answer: Good · Cepat, terima kasih" in page and "Change my answer" in page
    # the signed ticket link of the mails shows it too
    link = portal_tokens.make_ticket_token(world["dewi"].id, t.id)
    other = app.test_client()
    assert 'id="csat-form"' in other.get(f"/portal/t/{link}").get_data(as_text=True)


def test_the_question_is_not_shown_to_an_organisation_colleague(app, client, world, make):
    org = make.organisation(name="Toko Dewi", contacts_see_all_tickets=True)
    world["dewi"].organisation_id = org.id
    colleague = make.customer(email="rudi@tokodewi.co.id", name="Rudi", organisation_id=org.id)
    db.session.commit()
    t = new_ticket(world)
    resolve(world, t)
    sign_in(client, colleague)
    page = client.get(f"/portal/tickets/{t.number}")
    assert page.status_code == 200 and 'id="csat-form"' not in page.get_data(as_text=True)


def test_agent_ticket_page_shows_the_answer(app, client, auth, world):
    t = new_ticket(world)
    resolve(world, t)
    auth.login(world["agent"])
    assert 'id="csat"' not in client.get(f"/tickets/{t.number}").get_data(as_text=True)
    csat.record(t.id, world["dewi"].id, 1, "bad", "Teknisinya tidak datang")
    db.session.commit()
    page = client.get(f"/tickets/{t.number}")
    html = page.get_data(as_text=True)
    assert 'id="csat"' in html and "Teknisinya tidak datang" in html
    assert "Customer satisfaction" in text_of(page) and "Bad" in re.search(r'id="csat".*?</section>', html, re.S).group(0)
