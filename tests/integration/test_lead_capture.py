"""Lead capture from the public pages: the "request an offer" form (/offer) and the support form's
buying/offer topic. The offer form has the support form's protections (CSRF, honeypot, rate limits
per IP and per email, a signed and expiring thank-you link) and keeps what was typed on every error."""
import re
from html import unescape
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from helpdesk.extensions import db
from helpdesk.leads.models import Lead, LeadActivity
from helpdesk.tickets.models import Ticket
from helpdesk.webform import tokens
from tests.conftest import extract_csrf


def offer(**over):
    data = {"name": "Agus Wijaya", "company": "CV Maju Jaya", "email": "Agus@MajuJaya.co.id",
            "phone": "0812-3456-7890", "product_lines": ["website", "ads_seo"],
            "message": "Kami butuh toko online dan iklan Google.", "campaign": "PAMERAN-JKT"}
    data.update(over)
    return data


def text_of(resp):
    html = resp.get_data(as_text=True)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def count(model):
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model))


def only_lead():
    db.session.expire_all()
    return db.session.execute(select(Lead)).scalar_one()


def log_of(lead):
    return db.session.execute(select(LeadActivity).where(LeadActivity.lead_id == lead.id)
                              .order_by(LeadActivity.id)).scalars().all()


def assert_kept(resp, data):
    """Everything typed is back in the page: text fields and ticked product lines."""
    html = unescape(resp.get_data(as_text=True))
    for key in ("name", "company", "email", "phone", "message", "campaign"):
        if data.get(key):
            assert data[key] in html, key
    for line in data.get("product_lines", []):
        assert re.search(rf'value="{line}" checked', html), line


# ---------------------------------------------------------------- the offer form

def test_offer_form_creates_a_lead_with_every_field(app, client):
    page = client.get("/offer?promo=HEMAT50")
    assert page.status_code == 200 and 'value="HEMAT50"' in page.get_data(as_text=True)
    assert 'name="source" type="hidden" value="website"' in page.get_data(as_text=True)
    resp = client.post("/offer", data=offer(source="website"))
    assert resp.status_code == 303
    done = resp.headers["Location"]
    assert urlsplit(done).path.startswith("/offer/done/")
    lead = only_lead()
    assert lead.name == "Agus Wijaya" and lead.company == "CV Maju Jaya"
    assert lead.email == "agus@majujaya.co.id" and lead.phone == "+6281234567890"
    assert lead.product_lines == ["website", "ads_seo"]
    assert lead.notes == "Kami butuh toko online dan iklan Google."
    assert lead.campaign == "PAMERAN-JKT" and lead.source == "website"
    assert lead.stage == "new" and lead.owner_id is None and lead.merge_count == 0
    [created] = log_of(lead)
    assert created.kind == "created" and created.data["channel"] == "offer_form"
    page = client.get(done)
    assert page.status_code == 200 and "Thank you, we received your request" in text_of(page)


def test_same_person_with_the_phone_written_differently_is_merged(app, client):
    assert client.post("/offer", data=offer(email="", product_lines=["website"])).status_code == 303
    second = offer(name="Agus W.", email="agus@majujaya.co.id", phone="+62 812 3456 7890",
                   product_lines=["domain_hosting"], message="Juga butuh domain .co.id.", campaign="")
    assert client.post("/offer", data=second).status_code == 303
    lead = only_lead()
    assert lead.name == "Agus Wijaya"  # the first capture's name stays
    assert lead.email == "agus@majujaya.co.id"  # filled in by the merge
    assert lead.product_lines == ["website", "domain_hosting"] and lead.merge_count == 1
    assert "Kami butuh toko online" in lead.notes and "Juga butuh domain .co.id." in lead.notes
    kinds = [(e.kind, (e.data or {}).get("channel")) for e in log_of(lead)]
    assert kinds == [("created", "offer_form"), ("merged", "offer_form")]
    merged = log_of(lead)[-1]
    assert "email" in merged.data["filled"] and "product_lines" in merged.data["filled"]


def test_campaign_from_the_url_and_a_known_source(app, client):
    page = client.get("/offer?campaign=SEMINAR-BDG&source=seminar").get_data(as_text=True)
    assert 'value="SEMINAR-BDG"' in page and 'name="source" type="hidden" value="seminar"' in page
    # an unknown source falls back to the website
    assert 'name="source" type="hidden" value="website"' in client.get("/offer?source=hacker").get_data(as_text=True)
    assert client.post("/offer", data=offer(campaign="SEMINAR-BDG", source="seminar")).status_code == 303
    assert client.post("/offer", data=offer(email="lain@example.com", phone="", source="hacker")).status_code == 303
    db.session.expire_all()
    leads = db.session.execute(select(Lead).order_by(Lead.id)).scalars().all()
    assert [(ld.source, ld.campaign) for ld in leads] == [("seminar", "SEMINAR-BDG"), ("website", "PAMERAN-JKT")]


def test_a_rejected_form_keeps_what_was_typed(app, client):
    data = offer(name="")
    resp = client.post("/offer", data=data)
    assert resp.status_code == 200 and "Please tell us your name." in text_of(resp)
    assert_kept(resp, data)
    data = offer(email="", phone="")
    resp = client.post("/offer", data=data)
    assert resp.status_code == 200 and "Please give an email address or a phone number." in text_of(resp)
    assert_kept(resp, data)
    data = offer(phone="bukan nomor")  # refused by the service: the field is named, the rest kept
    resp = client.post("/offer", data=data)
    assert resp.status_code == 200 and "is not a phone number" in text_of(resp)
    assert_kept(resp, data)
    assert count(Lead) == 0


def test_honeypot_pretends_success_and_creates_nothing(app, client):
    resp = client.post("/offer", data=offer(fax_number="http://spam.example"))
    assert resp.status_code == 303
    page = client.get(resp.headers["Location"])
    assert page.status_code == 200 and "Thank you" in text_of(page)
    assert count(Lead) == 0 and count(LeadActivity) == 0


def test_rate_limit_per_ip_keeps_everything_typed(app_factory):
    app = app_factory(WEBFORM_RATE_LIMIT="2 per hour", WEBFORM_EMAIL_RATE_LIMIT="50 per hour")
    with app.app_context():
        client = app.test_client()
        for i in range(2):
            assert client.post("/offer", data=offer(email=f"a{i}@example.com", phone="")).status_code == 303
        data = offer(email="third@example.com", phone="", message="Pesan ketiga, jangan sampai hilang.")
        resp = client.post("/offer", data=data)
        assert resp.status_code == 429 and "Too many requests were sent from your network" in text_of(resp)
        assert_kept(resp, data)
        assert count(Lead) == 2
        # the support form counts apart, another network is not limited, failed validations do not count
        other = app.test_client()
        other.environ_base["REMOTE_ADDR"] = "198.51.100.7"
        for _ in range(3):
            assert other.post("/offer", data=offer(name="")).status_code == 200
        assert other.post("/offer", data=data).status_code == 303
        assert count(Lead) == 3


def test_rate_limit_per_email_keeps_everything_typed(app_factory):
    app = app_factory(WEBFORM_RATE_LIMIT="50 per hour", WEBFORM_EMAIL_RATE_LIMIT="1 per hour")
    with app.app_context():
        first, second = app.test_client(), app.test_client()
        second.environ_base["REMOTE_ADDR"] = "198.51.100.8"
        assert first.post("/offer", data=offer()).status_code == 303
        data = offer(email="AGUS@majujaya.co.id", phone="", message="Pertanyaan kedua.")
        resp = second.post("/offer", data=data)
        assert resp.status_code == 429 and "for this email address" in text_of(resp)
        assert_kept(resp, data)
        assert only_lead().merge_count == 0
        assert second.post("/offer", data=offer(email="lain@example.com", phone="")).status_code == 303
        assert count(Lead) == 2


def test_rate_limit_per_phone_when_no_email_is_given(app_factory):
    app = app_factory(WEBFORM_RATE_LIMIT="50 per hour", WEBFORM_EMAIL_RATE_LIMIT="1 per hour")
    with app.app_context():
        first, second = app.test_client(), app.test_client()
        second.environ_base["REMOTE_ADDR"] = "198.51.100.9"
        assert first.post("/offer", data=offer(email="", phone="0812-3456-7890")).status_code == 303
        data = offer(email="", phone="+62 812 3456 7890", message="Lewat nomor yang sama.")
        resp = second.post("/offer", data=data)
        assert resp.status_code == 429
        assert_kept(resp, data)
        assert only_lead().merge_count == 0


def test_offer_form_needs_the_csrf_token(csrf_app):
    client = csrf_app.test_client()
    resp = client.post("/offer", data=offer())
    assert resp.status_code == 400 and "csrf" in resp.get_data(as_text=True).lower()
    assert count(Lead) == 0
    token = extract_csrf(client.get("/offer").get_data(as_text=True))
    assert client.post("/offer", data={**offer(), "csrf_token": token}).status_code == 303
    assert count(Lead) == 1


def test_thank_you_link_is_signed_and_expires(app_factory):
    app = app_factory(WEBFORM_DONE_MAX_AGE=-1)  # every confirmation link is already too old
    with app.app_context():
        client = app.test_client()
        resp = client.post("/offer", data=offer())
        page = client.get(resp.headers["Location"])
        assert page.status_code == 400 and "This page has expired" in text_of(page)
    app = app_factory()
    with app.app_context():
        client = app.test_client()
        assert client.get("/offer/done/1").status_code == 400
        with app.test_request_context():
            ticket_token = tokens.make_done_token(1)  # the support form's token does not open this page
            good = tokens.make_offer_done_token(True)
        assert client.get(f"/offer/done/{ticket_token}").status_code == 400
        assert client.get(f"/offer/done/{good[:-3]}xyz").status_code == 400
        assert client.get(f"/offer/done/{good}").status_code == 200


def test_offer_page_is_indonesian_by_default_and_not_framable(app):
    browser = FlaskClient(app, app.response_class, use_cookies=True)  # no Accept-Language
    page = browser.get("/offer")
    html = page.get_data(as_text=True)
    assert '<html lang="id">' in html and "Kirim" in text_of(page)
    assert re.search(r'href="(/offer)?\?lang=en"', html)
    assert '<html lang="en">' in browser.get("/offer?lang=en").get_data(as_text=True)
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert not re.search(r"<script(?![^>]*\bsrc=)", html) and " style=" not in html and "<style" not in html


# ---------------------------------------------------------------- the support form's buying topic

@pytest.fixture
def queues(make):
    made = {slug: make.queue(slug=slug, name=slug.replace("-", " ").title())
            for slug in ("technical-support", "customer-support", "billing", "marketing")}
    db.session.commit()
    return made


def support(**over):
    data = {"name": "Dewi Lestari", "email": "dewi@tokodewi.co.id", "phone": "0812-3456-7890",
            "topic": "buying", "website": "", "subject": "Minta penawaran toko online",
            "message": "Berapa harga paket toko online dengan domain .co.id?"}
    data.update(over)
    return data


def test_support_form_buying_topic_creates_a_ticket_and_a_lead(app, client, queues):
    assert client.post("/form", data=support()).status_code == 303
    db.session.expire_all()
    ticket = db.session.execute(select(Ticket)).scalar_one()
    assert ticket.queue.slug == "marketing" and ticket.subject == "Minta penawaran toko online"
    lead = only_lead()
    assert lead.name == "Dewi Lestari" and lead.email == "dewi@tokodewi.co.id" and lead.phone == "+6281234567890"
    assert lead.source == "website" and lead.stage == "new"
    assert f"#{ticket.number}" in lead.notes and "Minta penawaran toko online" in lead.notes
    assert "Berapa harga paket toko online" in lead.notes
    [created] = log_of(lead)
    assert created.kind == "created" and created.data["channel"] == "support_form"
    # the same person asks again, phone written differently: a second ticket, the same lead
    again = support(email="DEWI@tokodewi.co.id", phone="+62 812-3456-7890", subject="Dan hosting?",
                    message="Sekalian hosting 1 tahun.")
    assert client.post("/form", data=again).status_code == 303
    assert count(Ticket) == 2
    lead = only_lead()
    assert lead.merge_count == 1 and "Sekalian hosting 1 tahun." in lead.notes
    assert [e.kind for e in log_of(lead)] == ["created", "merged"]


def test_other_support_topics_create_no_lead(app, client, queues):
    assert client.post("/form", data=support(topic="website")).status_code == 303
    assert count(Ticket) == 1 and count(Lead) == 0
