"""The user-facing parts of subscriptions (issue #8 §1, §4 "RFC 8058"), with CSRF on as in production:

- one-click unsubscribe: a bare POST from a client with no cookies unsubscribes and logs the event;
  a GET changes nothing; a tampered token changes nothing; the List-Unsubscribe URL of a real
  announcement received on the test SMTP server works;
- the preference page round trip (customer and lead);
- double opt-in from the offer form and from the support form: the confirmation mail arrives on the
  SMTP server, a GET of its link confirms nothing, the POST does; an unticked box records nothing;
- the portal's Subscriptions page;
- the mailto unsubscribe through the real mail ingest path;
- the agents' Subscriptions card on the customer and lead pages.
"""
import re
from html import unescape
from urllib.parse import urlsplit

import pytest
from flask import g
from sqlalchemy import func, select

from helpdesk.extensions import db
from helpdesk.leads.models import Lead
from helpdesk.mail import services as mail_services
from helpdesk.mail.models import InboundMessage
from helpdesk.portal.tokens import make_sign_in_token
from helpdesk.subscriptions import delivery, services as subs, tokens
from helpdesk.subscriptions.models import ConsentEvent, Subscription
from helpdesk.tickets.models import Ticket
from tests.conftest import extract_csrf
from tests.mailgen import dsn, mail
from tests.smtp_server import shared_smtp, smtp_server  # noqa: F401  (fixtures)

BASE_URL = "https://desk.example"


@pytest.fixture
def app(app_factory, smtp_server):
    """CSRF on (production), real mail to the test SMTP server."""
    app = app_factory(WTF_CSRF_ENABLED=True, BASE_URL=BASE_URL, MAIL_DEFAULT_SENDER="Support <support@desk.example>",
                      **smtp_server.mail_config())
    with app.app_context():
        yield app
        db.session.remove()


def text_of(resp):
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", resp.get_data(as_text=True))).split())


def path_of(url):
    assert url.startswith(BASE_URL + "/"), url
    return urlsplit(url).path


def events(kind, sid):
    db.session.expire_all()
    return [(e.topic, e.action, e.source, e.method) for e in reversed(subs.history(kind, sid))]


def state(kind, sid):
    db.session.expire_all()
    return subs.state(kind, sid)


def customer(make, email="dewi@example.net", **kw):
    c = make.customer(email=email, **kw)
    db.session.commit()
    return c.id


def announce(cid, key, email="dewi@example.net", topic="maintenance"):
    """One real announcement mail (the delivery path the senders use)."""
    did = delivery.claim(key, kind="announce", customer_id=cid, email=email)
    delivery.send(did, "subscribe_confirm", topic=topic, kind="customer", sid=cid, to=email, locale="en",
                  subject="Maintenance notice",
                  context={"confirm_url": "https://x", "topics": [topic], "subscriber_name": "Dewi"})
    db.session.commit()
    return did


def confirm_link(received):
    return next(line.strip() for line in received.text.splitlines() if "/subscriptions/confirm/" in line)


# ---------------------------------------------------------------- RFC 8058 one-click

def test_bare_one_click_post_without_cookies_unsubscribes_and_logs(app, make):
    cid = customer(make)
    token = tokens.make_unsubscribe_token("customer", cid, "maintenance")
    client = app.test_client(use_cookies=False)
    resp = client.post(f"/subscriptions/unsubscribe/{token}", data="List-Unsubscribe=One-Click",
                       content_type="application/x-www-form-urlencoded",
                       environ_base={"REMOTE_ADDR": "203.0.113.9", "HTTP_ACCEPT_LANGUAGE": "en"})
    assert resp.status_code == 200, resp.data[:300]
    assert "You are unsubscribed" in text_of(resp)
    assert "Set-Cookie" not in resp.headers
    assert state("customer", cid)["maintenance"] == "unsubscribed"
    [event] = db.session.execute(select(ConsentEvent)).scalars().all()
    assert (event.topic, event.action, event.source, event.method, event.ip) == (
        "maintenance", "unsubscribe", "one_click", "one-click", "203.0.113.9")
    # again: still 200, nothing more logged
    assert client.post(f"/subscriptions/unsubscribe/{token}").status_code == 200
    assert len(events("customer", cid)) == 1


def test_empty_bare_post_also_works(app, make):
    cid = customer(make)
    token = tokens.make_unsubscribe_token("customer", cid, "general")
    resp = app.test_client(use_cookies=False).post(f"/subscriptions/unsubscribe/{token}")
    assert resp.status_code == 200
    assert state("customer", cid)["general"] == "unsubscribed"


def test_get_only_shows_a_confirmation_page_whose_button_works(app, make):
    cid = customer(make)
    token = tokens.make_unsubscribe_token("customer", cid, "maintenance")
    client = app.test_client(use_cookies=False)
    page = client.get(f"/subscriptions/unsubscribe/{token}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Unsubscribe?" in text_of(page) and "Set-Cookie" not in page.headers
    assert state("customer", cid)["maintenance"] == "subscribed" and events("customer", cid) == []
    # the page's form posts to the same URL with no CSRF token; the preference link is there
    form = re.search(r'<form method="post" action="([^"]+)" id="unsubscribe-form".*?</form>', html, re.S)
    assert "csrf_token" not in form.group(0)
    action = unescape(form.group(1))
    assert urlsplit(action).path == f"/subscriptions/unsubscribe/{token}"
    assert f"{BASE_URL}/subscriptions/preferences/" in html
    resp = client.post(action, data={"List-Unsubscribe": "One-Click"})
    assert resp.status_code == 200 and state("customer", cid)["maintenance"] == "unsubscribed"


@pytest.mark.parametrize("mangle", ["flip", "other-salt", "garbage"])
def test_a_tampered_token_changes_nothing(app, make, mangle):
    cid = customer(make)
    good = tokens.make_unsubscribe_token("customer", cid, "maintenance")
    bad = {"flip": good[:-2] + ("AA" if not good.endswith("AA") else "BB"),
           "other-salt": tokens.make_preferences_token("customer", cid),
           "garbage": "not-a-valid-token"}[mangle]
    client = app.test_client(use_cookies=False)
    resp = client.post(f"/subscriptions/unsubscribe/{bad}", data="List-Unsubscribe=One-Click",
                       content_type="application/x-www-form-urlencoded")
    assert resp.status_code == 400 and "This link does not work" in text_of(resp)
    assert client.get(f"/subscriptions/unsubscribe/{bad}").status_code == 400
    assert state("customer", cid)["maintenance"] == "subscribed"
    assert db.session.scalar(select(func.count()).select_from(ConsentEvent)) == 0


def test_the_headers_of_a_real_announcement_point_to_a_working_url(app, make, smtp_server, run_jobs):
    cid = customer(make)
    first = announce(cid, "pages:1")
    run_jobs()
    [received] = smtp_server.to("dewi@example.net")
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    urls = re.findall(r"<([^>]+)>", received["List-Unsubscribe"])
    https = next(u for u in urls if u.startswith("https://"))
    assert any(u.startswith("mailto:support@desk.example?subject=unsubscribe%20") for u in urls)
    # what a mail provider does: POST the header's URL, body as RFC 8058 says, no cookies
    resp = app.test_client(use_cookies=False).post(path_of(https), data="List-Unsubscribe=One-Click",
                                                   content_type="application/x-www-form-urlencoded")
    assert resp.status_code == 200
    assert state("customer", cid)["maintenance"] == "unsubscribed"
    [event] = db.session.execute(select(ConsentEvent)).scalars().all()
    assert (event.source, event.method, event.delivery_id) == ("one_click", "one-click", first)
    # the next notice does not reach them
    smtp_server.clear()
    announce(cid, "pages:2")
    run_jobs()
    assert smtp_server.to("dewi@example.net") == []


# ---------------------------------------------------------------- preference page

def test_preference_page_round_trip_for_a_customer(app, make):
    cid = customer(make)
    url = path_of(subs.preferences_url("customer", cid))
    client = app.test_client()
    page = client.get(url)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert re.search(r'id="maintenance"[^>]* checked|checked[^>]*id="maintenance"', html)
    assert not re.search(r'id="promotions"[^>]* checked|checked[^>]*id="promotions"', html)
    # without the CSRF token: refused, nothing changed
    assert client.post(url, data={"promotions": "y"}).status_code == 400
    assert state("customer", cid)["promotions"] == "unsubscribed"
    # maintenance off, promotions on, general kept
    resp = client.post(url, data={"csrf_token": extract_csrf(html), "promotions": "y", "general": "y"})
    assert resp.status_code == 303
    assert state("customer", cid) == {"maintenance": "unsubscribed", "promotions": "subscribed",
                                      "general": "subscribed"}
    assert set(events("customer", cid)) == {("maintenance", "unsubscribe", "preference_page", "form"),
                                            ("promotions", "subscribe", "preference_page", "form")}
    page = client.get(resp.headers["Location"])
    assert "Your choices are saved." in text_of(page)
    assert re.search(r'id="promotions"[^>]* checked|checked[^>]*id="promotions"', page.get_data(as_text=True))


def test_preference_page_of_a_lead_asks_for_confirmation(app, make, smtp_server, run_jobs):
    lead = Lead(name="Budi", email="budi@example.org", source="website")
    db.session.add(lead)
    db.session.commit()
    lead_id = lead.id
    url = path_of(subs.preferences_url("lead", lead_id))
    client = app.test_client()
    html = client.get(url).get_data(as_text=True)
    assert 'id="maintenance"' not in html and 'id="promotions"' in html and 'id="general"' in html
    resp = client.post(url, data={"csrf_token": extract_csrf(html), "general": "y"})
    assert resp.status_code == 303
    assert state("lead", lead_id) == {"promotions": "unsubscribed", "general": "pending"}
    page = client.get(resp.headers["Location"])
    assert "Awaiting confirmation" in text_of(page) and "please confirm" in text_of(page)
    run_jobs()
    [received] = smtp_server.to("budi@example.org")
    assert "/subscriptions/confirm/" in received.text


def test_bad_preference_link(app):
    resp = app.test_client().get("/subscriptions/preferences/not-a-valid-token")
    assert resp.status_code == 400 and "This link does not work" in text_of(resp)


# ---------------------------------------------------------------- double opt-in from the public forms

def _confirm_through_the_page(app, url, kind, sid, topic="promotions"):
    """GET the mailed link (changes nothing), then press Confirm (POST), in another browser."""
    g.pop("csrf_token", None)  # the test's app context (and its g) outlives the requests: a new browser's token
    client = app.test_client()
    page = client.get(path_of(url))
    assert page.status_code == 200 and "Confirm your subscription" in text_of(page)
    assert state(kind, sid)[topic] == "pending"
    resp = client.post(path_of(url), data={"csrf_token": extract_csrf(page.get_data(as_text=True))})
    assert resp.status_code == 200 and "your subscription is confirmed" in text_of(resp)
    assert state(kind, sid)[topic] == "subscribed"
    again = client.post(path_of(url), data={"csrf_token": extract_csrf(page.get_data(as_text=True))})
    assert "This link was used before" in text_of(again)


def test_offer_form_box_subscribes_a_lead_by_double_opt_in(app, smtp_server, run_jobs):
    client = app.test_client()
    page = client.get("/offer")
    html = page.get_data(as_text=True)
    assert "Send me product news and promotions" in text_of(page)
    assert re.search(r'<input[^>]*id="promotions"[^>]*>', html) and \
        "checked" not in re.search(r'<input[^>]*id="promotions"[^>]*>', html).group(0)
    resp = client.post("/offer", data={"csrf_token": extract_csrf(html), "name": "Agus", "email": "agus@example.org",
                                       "promotions": "y"})
    assert resp.status_code == 303
    lead_id = db.session.execute(select(Lead.id)).scalar_one()
    assert state("lead", lead_id)["promotions"] == "pending"
    assert events("lead", lead_id) == [("promotions", "request", "offer_form", "checkbox")]
    assert lead_id not in {r[0] for r in db.session.execute(subs.lead_audience("promotions"))}
    run_jobs()
    [received] = smtp_server.to("agus@example.org")
    _confirm_through_the_page(app, confirm_link(received), "lead", lead_id)
    assert lead_id in {r[0] for r in db.session.execute(subs.lead_audience("promotions"))}
    assert events("lead", lead_id)[-1] == ("promotions", "confirm", "confirmation", "link")


def test_offer_form_unticked_records_nothing_and_rejected_form_keeps_the_box(app, smtp_server, run_jobs):
    client = app.test_client()
    token = extract_csrf(client.get("/offer").get_data(as_text=True))
    # rejected (no email, no phone): the ticked box comes back ticked
    resp = client.post("/offer", data={"csrf_token": token, "name": "Agus", "promotions": "y"})
    assert resp.status_code in (200, 400)
    assert "checked" in re.search(r'<input[^>]*id="promotions"[^>]*>', resp.get_data(as_text=True)).group(0)
    assert client.post("/offer", data={"csrf_token": token, "name": "Agus",
                                       "email": "agus@example.org"}).status_code == 303
    assert db.session.scalar(select(func.count()).select_from(Subscription)) == 0
    assert db.session.scalar(select(func.count()).select_from(ConsentEvent)) == 0
    run_jobs()
    assert smtp_server.to("agus@example.org") == []


def test_support_form_box_subscribes_the_customer_by_double_opt_in(app, make, smtp_server, run_jobs):
    make.queue(slug="technical-support", name="Technical Support")
    db.session.commit()
    client = app.test_client()
    html = client.get("/form").get_data(as_text=True)
    assert "checked" not in re.search(r'<input[^>]*id="promotions"[^>]*>', html).group(0)
    fields = {"csrf_token": extract_csrf(html), "name": "Dewi", "email": "dewi@example.net", "topic": "website",
              "subject": "Website down", "message": "Error 500."}
    # rejected (no subject): the box stays as typed
    resp = client.post("/form", data={**fields, "subject": "", "promotions": "y"})
    assert "checked" in re.search(r'<input[^>]*id="promotions"[^>]*>', resp.get_data(as_text=True)).group(0)
    resp = client.post("/form", data={**fields, "promotions": "y"})
    assert resp.status_code == 303
    ticket = db.session.execute(select(Ticket)).scalar_one()
    cid = ticket.customer_id
    assert state("customer", cid)["promotions"] == "pending"
    assert events("customer", cid) == [("promotions", "request", "support_form", "checkbox")]
    run_jobs()
    confirmations = [m for m in smtp_server.to("dewi@example.net") if "/subscriptions/confirm/" in m.text]
    assert len(confirmations) == 1
    _confirm_through_the_page(app, confirm_link(confirmations[0]), "customer", cid)


def test_support_form_unticked_records_nothing(app, make):
    make.queue(slug="technical-support", name="Technical Support")
    db.session.commit()
    client = app.test_client()
    html = client.get("/form").get_data(as_text=True)
    resp = client.post("/form", data={"csrf_token": extract_csrf(html), "name": "Dewi", "email": "dewi@example.net",
                                      "topic": "website", "subject": "Website down", "message": "Error 500."})
    assert resp.status_code == 303
    assert db.session.scalar(select(func.count()).select_from(ConsentEvent)) == 0
    assert db.session.scalar(select(func.count()).select_from(Subscription)) == 0


def test_confirmation_links_bad_and_expired(app, make):
    lead = Lead(name="Budi", email="budi@example.org")
    db.session.add(lead)
    db.session.commit()
    client = app.test_client()
    resp = client.get("/subscriptions/confirm/not-a-valid-token")
    assert resp.status_code == 400 and "This link does not work" in text_of(resp)
    app.config["SUBSCRIBE_CONFIRM_MAX_AGE"] = -1
    token = tokens.make_confirm_token("lead", lead.id, ["promotions"])
    resp = client.get(f"/subscriptions/confirm/{token}")
    assert resp.status_code == 400 and "This link has expired" in text_of(resp)


# ---------------------------------------------------------------- portal

def portal_login(app, cid):
    from helpdesk.customers.models import Customer

    c = db.session.get(Customer, cid)
    c.login_nonce = "s" * 32
    db.session.commit()
    g.pop("csrf_token", None)
    client = app.test_client()
    url = f"/portal/login/{make_sign_in_token(cid, c.login_nonce)}"
    token = extract_csrf(client.get(url).get_data(as_text=True))
    assert client.post(url, data={"csrf_token": token}).status_code == 303
    return client


def test_portal_subscriptions_page(app, make):
    cid = customer(make)
    client = portal_login(app, cid)
    home = client.get("/portal/")
    assert 'href="/portal/subscriptions"' in home.get_data(as_text=True)
    page = client.get("/portal/subscriptions")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "No changes yet" in text_of(page)
    resp = client.post("/portal/subscriptions", data={"csrf_token": extract_csrf(html), "general": "y",
                                                      "promotions": "y"})
    assert resp.status_code == 303
    assert state("customer", cid) == {"maintenance": "unsubscribed", "promotions": "subscribed",
                                      "general": "subscribed"}
    assert set(events("customer", cid)) == {("maintenance", "unsubscribe", "portal", "checkbox"),
                                            ("promotions", "subscribe", "portal", "checkbox")}
    page = text_of(client.get(resp.headers["Location"]))
    assert "Your subscriptions are saved." in page
    assert "Unsubscribed Customer portal checkbox" in page and "Subscribed Customer portal checkbox" in page
    # anonymous: sent to the sign-in page
    assert app.test_client().get("/portal/subscriptions").status_code == 302


# ---------------------------------------------------------------- mailto

def ingest(raw):
    rid = mail_services.store_file(raw, "test")
    db.session.commit()
    [outcome] = mail_services.process_pending(ids=[rid])
    db.session.commit()
    return outcome


def test_mailto_unsubscribe_through_the_ingest(app, make, queue):
    cid = customer(make, email="budi@pelanggan.co.id")
    token = tokens.make_unsubscribe_token("customer", cid, "general")
    out = ingest(mail(subject=f"unsubscribe {token}", body="This message was sent to unsubscribe."))
    assert (out.action, out.reason, out.ticket) == ("ignored", "unsubscribe", None)
    assert db.session.get(InboundMessage, out.inbound_id).reason == "unsubscribe"
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == 0
    assert state("customer", cid)["general"] == "unsubscribed"
    assert events("customer", cid) == [("general", "unsubscribe", "mailto", "mailto")]
    # a wrong token falls through to the normal processing: a ticket
    out = ingest(mail(subject=f"unsubscribe {token[:-3]}xyz"))
    assert out.action == "created"
    assert len(events("customer", cid)) == 1


def test_a_bounce_of_an_announcement_through_the_ingest_marks_the_delivery_and_the_address(app, make, queue):
    """The bounce comes back by the email channel: a delay notice marks the delivery bounced but not the
    address; a hard bounce flags the address, so the next announcement leaves it out."""
    from helpdesk.customers.models import CustomerEmail
    from helpdesk.mail.models import OutboundMail
    from helpdesk.subscriptions.models import AnnouncementDelivery

    cid = customer(make, email="eko@pelanggan.co.id")
    did = announce(cid, "bounce:1", email="eko@pelanggan.co.id")
    ours = db.session.get(OutboundMail, db.session.get(AnnouncementDelivery, did).outbound_id).message_id
    soft = ingest(dsn(original_message_id=ours, recipient="eko@pelanggan.co.id", status="4.4.1"))
    assert (soft.action, soft.reason, soft.ticket) == ("ignored", "own_bounce", None)
    address = db.session.execute(select(CustomerEmail).where(CustomerEmail.email == "eko@pelanggan.co.id")).scalar_one()
    assert db.session.get(AnnouncementDelivery, did).status == "bounced" and address.bouncing_at is None
    hard = ingest(dsn(original_message_id=ours, recipient="eko@pelanggan.co.id", status="5.1.1"))
    assert (hard.action, hard.reason) == ("ignored", "own_bounce")
    db.session.expire_all()
    assert db.session.get(CustomerEmail, address.id).bouncing_at is not None
    assert cid not in {row[0] for row in db.session.execute(subs.customer_audience("maintenance"))}
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == 0


# ---------------------------------------------------------------- agents' card

def test_customer_and_lead_pages_show_the_subscriptions_card(app, make):
    cid = customer(make)
    lead = Lead(name="Budi", email="budi@example.org")
    db.session.add(lead)
    db.session.flush()
    lead_id = lead.id
    subs.change("customer", cid, {"promotions": True}, source="portal", method="checkbox")
    subs.change("lead", lead_id, {"general": True}, source="offer_form", method="checkbox")
    agent = make.user(roles=["admin"], email="boss@desk.example")
    db.session.commit()
    client = app.test_client()
    token = extract_csrf(client.get("/login").get_data(as_text=True))
    assert client.post("/login", data={"csrf_token": token, "email": agent.email,
                                       "password": "correct-horse-battery"}).status_code == 302
    page = client.get(f"/customers/{cid}")
    assert page.status_code == 200
    card = text_of(page)
    assert "Subscriptions" in card and "Product news and promotions: Subscribed" in card
    assert "Subscribed Customer portal checkbox" in card
    page = client.get(f"/leads/{lead_id}")
    assert page.status_code == 200
    card = text_of(page)
    assert "General announcements: Awaiting confirmation" in card
    assert "Confirmation requested Offer form checkbox" in card
