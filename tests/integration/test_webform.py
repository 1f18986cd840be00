"""The public web form (/form) and its embeddable variant (/form/embed): tickets in the right
queue with channel web, attachments, the acknowledgement mail, honeypot, rate limits, input kept
on every error, the framed variant's CSP and form token, and nothing about a known customer shown."""
import io
import re
import time
from html import unescape
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import func, select

from helpdesk.customers.models import Customer, CustomerEmail
from helpdesk.extensions import db, mail
from helpdesk.jobs import OutboxJob
from helpdesk.mail.models import OutboundMail
from helpdesk.tickets.models import Attachment, Message, Ticket
from helpdesk.webform import tokens
from tests.conftest import extract_csrf

QUEUES = ("technical-support", "customer-support", "billing", "marketing")


@pytest.fixture
def queues(make):
    made = {slug: make.queue(slug=slug, name=slug.replace("-", " ").title()) for slug in QUEUES}
    db.session.commit()
    return made


def fields(**over):
    data = {"name": "Dewi Lestari", "email": "dewi@tokodewi.co.id", "phone": "0812-3456-7890",
            "topic": "website", "website": "tokodewi.co.id", "subject": "Website tidak bisa dibuka",
            "message": "Sejak pagi muncul error 500 di halaman depan."}
    data.update(over)
    return data


def text_of(resp):
    html = resp.get_data(as_text=True)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def count(model):
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model))


def only_ticket():
    db.session.expire_all()
    return db.session.execute(select(Ticket)).scalar_one()


def first_message(ticket):
    return db.session.execute(select(Message).where(Message.ticket_id == ticket.id).order_by(Message.id)).scalars().first()


def embed_token(client, path="/form/embed"):
    m = re.search(r'name="form_token" type="hidden" value="([^"]+)"', client.get(path).get_data(as_text=True))
    return m.group(1)


def assert_kept(resp, data):
    """Everything typed is back in the page (files excepted)."""
    html = unescape(resp.get_data(as_text=True))
    for key in ("name", "email", "phone", "website", "subject", "message"):
        if data.get(key):
            assert data[key] in html, key
    assert f'<option selected value="{data["topic"]}">' in resp.get_data(as_text=True)


# ---------------------------------------------------------------- the ticket

def test_new_customer_gets_a_web_ticket_in_the_right_queue(app, client, queues):
    resp = client.post("/form", data=fields())
    assert resp.status_code == 303
    done = resp.headers["Location"]
    assert "/form/done/" in done and not re.search(r"/done/\d+$", urlsplit(done).path)
    ticket = only_ticket()
    assert ticket.channel == "web" and ticket.queue.slug == "technical-support" and ticket.status == "new"
    assert ticket.subject == "Website tidak bisa dibuka"
    cust = ticket.customer
    assert cust.name == "Dewi Lestari" and cust.phone == "+6281234567890" and cust.primary_email == "dewi@tokodewi.co.id"
    assert cust.language == "en"  # the language the form was filled in (the test browser asks for English)
    msg = db.session.execute(select(Message).where(Message.ticket_id == ticket.id)).scalar_one()
    assert msg.author_customer_id == cust.id and msg.author_user_id is None
    assert "error 500" in msg.body_text and "Website: tokodewi.co.id" in msg.body_text
    page = client.get(done)
    assert page.status_code == 200
    assert f"#{ticket.number}" in text_of(page) and "What happens next" in text_of(page)


@pytest.mark.parametrize("topic, slug", [("website", "technical-support"), ("domain_hosting", "technical-support"),
                                         ("billing", "billing"), ("buying", "marketing"),
                                         ("other", "customer-support")])
def test_topic_maps_to_queue(app, client, queues, topic, slug):
    assert client.post("/form", data=fields(topic=topic)).status_code == 303
    assert only_ticket().queue.slug == slug


def test_known_customer_is_matched_and_never_shown_or_changed(app, client, queues, make):
    known = make.customer(name="Siti Rahayu", phone=None)
    db.session.add(CustomerEmail(customer_id=known.id, email="owner@rahayu.co.id", is_primary=False))
    secret = make.ticket(customer=known, queue=queues["billing"], subject="Invoice rahasia 4711")
    db.session.commit()
    secrets = ["Siti Rahayu", "Invoice rahasia 4711", known.primary_email, f"#{secret.number}"]

    stranger = fields(name="Orang Asing", email="OWNER@rahayu.co.id ", phone="0813 1111 2222")
    pages = [client.get("/form"), client.post("/form", data={**stranger, "subject": ""}),
             client.post("/form", data=stranger)]
    pages.append(client.get(pages[-1].headers["Location"]))
    for page in pages:
        body = page.get_data(as_text=True) + str(page.headers)
        for s in secrets:
            assert s not in body, s
    db.session.expire_all()
    tickets = db.session.execute(select(Ticket).where(Ticket.channel == "web", Ticket.id != secret.id)).scalars().all()
    assert len(tickets) == 1 and tickets[0].customer_id == known.id
    assert count(Customer) == 1
    known = db.session.get(Customer, known.id)
    assert known.name == "Siti Rahayu" and known.phone is None  # a stranger's input changes no record
    assert "Phone: +6281311112222" in first_message(tickets[0]).body_text

    # The answer for a known address looks exactly like the one for a new address.
    fresh = client.post("/form", data=fields(email="someone.new@example.com"))
    assert fresh.status_code == pages[2].status_code == 303
    assert text_of(client.get(fresh.headers["Location"])).replace(str(tickets[0].number + 1), "N") == \
        text_of(pages[3]).replace(str(tickets[0].number), "N")


def test_attachments_are_stored(app, client, queues):
    data = fields(attachments=[(io.BytesIO(b"%PDF-1.4 invoice"), "tagihan.pdf", "application/pdf"),
                               (io.BytesIO(b"\x89PNG screenshot"), "layar.png", "image/png")])
    assert client.post("/form", data=data, content_type="multipart/form-data").status_code == 303
    ticket = only_ticket()
    atts = db.session.execute(select(Attachment).where(Attachment.ticket_id == ticket.id)
                              .order_by(Attachment.filename)).scalars().all()
    assert [(a.filename, a.size, a.content_type) for a in atts] == [
        ("layar.png", len(b"\x89PNG screenshot"), "image/png"),
        ("tagihan.pdf", len(b"%PDF-1.4 invoice"), "application/pdf")]
    assert all(a.message_id == first_message(ticket).id for a in atts)


def test_acknowledgement_mail_has_the_number_in_the_customers_language(app, client, queues, run_jobs):
    indonesian = FlaskClient(app, app.response_class, use_cookies=True)  # no Accept-Language: Indonesian
    assert indonesian.post("/form", data=fields()).status_code == 303
    assert client.post("/form", data=fields(email="english@example.com", name="Jane")).status_code == 303
    db.session.expire_all()
    id_number, en_number = db.session.execute(select(Ticket.number).order_by(Ticket.id)).scalars().all()
    acks = db.session.execute(select(OutboundMail).where(OutboundMail.kind == "ack").order_by(OutboundMail.id)
                              ).scalars().all()
    assert [(a.to_addrs, a.locale, a.automatic) for a in acks] == [(["dewi@tokodewi.co.id"], "id", True),
                                                                  (["english@example.com"], "en", True)]
    sends = db.session.execute(select(OutboxJob.queue, OutboxJob.args)
                               .where(OutboxJob.func == "helpdesk.mail.jobs.send_outbound")).all()
    assert all(("mail", [a.id]) in [(q, list(args)) for q, args in sends] for a in acks)
    with mail.record_messages() as outbox:
        run_jobs()
    acks = {m.recipients[0]: m for m in outbox if "#" in m.subject and m.recipients[0].endswith(("tokodewi.co.id",
                                                                                                 "example.com"))}
    ack_id = acks["dewi@tokodewi.co.id"]
    assert f"#{id_number}" in ack_id.subject and f"#{id_number}" in ack_id.body
    assert "Halo Dewi Lestari," in ack_id.body and "Terima kasih" in ack_id.body
    ack_en = acks["english@example.com"]
    assert f"#{en_number}" in ack_en.subject and "What happens next" in ack_en.body
    assert "Hello Jane," in ack_en.body
    link = next(line for line in ack_en.body.splitlines() if "/portal/t/" in line).strip()
    page = client.get(link[link.index("/portal/"):])
    assert page.status_code == 200 and f"#{en_number}" in page.get_data(as_text=True)


# ---------------------------------------------------------------- protection

def test_honeypot_pretends_success_and_creates_nothing(app, client, queues):
    resp = client.post("/form", data=fields(fax_number="http://spam.example"))
    assert resp.status_code == 303
    page = client.get(resp.headers["Location"])
    assert page.status_code == 200 and "Thank you" in text_of(page)
    assert count(Ticket) == 0 and count(Customer) == 0 and count(OutboxJob) == 0


def test_rate_limit_per_ip_keeps_everything_typed(app_factory, queues):
    app = app_factory(WEBFORM_RATE_LIMIT="2 per hour", WEBFORM_EMAIL_RATE_LIMIT="50 per hour")
    with app.app_context():
        client = app.test_client()
        for i in range(2):
            assert client.post("/form", data=fields(email=f"a{i}@example.com")).status_code == 303
        data = fields(email="third@example.com", message="Pesan ketiga yang panjang, jangan sampai hilang.")
        resp = client.post("/form", data=data)
        assert resp.status_code == 429
        assert "Too many requests were sent from your network" in text_of(resp)
        assert_kept(resp, data)
        assert count(Ticket) == 2
        # Another network is not limited; failed validations do not count.
        other = app.test_client()
        other.environ_base["REMOTE_ADDR"] = "198.51.100.7"
        for _ in range(3):
            assert other.post("/form", data=fields(subject="")).status_code == 200
        assert other.post("/form", data=data).status_code == 303
        assert count(Ticket) == 3


def test_rate_limit_per_email_keeps_everything_typed(app_factory, queues):
    app = app_factory(WEBFORM_RATE_LIMIT="50 per hour", WEBFORM_EMAIL_RATE_LIMIT="1 per hour")
    with app.app_context():
        first, second = app.test_client(), app.test_client()
        second.environ_base["REMOTE_ADDR"] = "198.51.100.8"
        assert first.post("/form", data=fields()).status_code == 303
        data = fields(email="Dewi@TokoDewi.co.id", subject="Lagi", message="Pertanyaan kedua saya.")
        resp = second.post("/form", data=data)
        assert resp.status_code == 429 and "for this email address" in text_of(resp)
        assert_kept(resp, data)
        assert count(Ticket) == 1
        assert second.post("/form", data=fields(email="lain@example.com")).status_code == 303


def test_validation_keeps_input_and_names_files_to_add_again(app, client, queues):
    data = fields(subject="", phone="0812 9999 8888")
    resp = client.post("/form", data={**data, "attachments": [(io.BytesIO(b"x"), "bukti-transfer.jpg", "image/jpeg")]},
                       content_type="multipart/form-data")
    assert resp.status_code == 200
    text = text_of(resp)
    assert "Please write a short subject." in text
    assert "Please choose these files again" in text and "bukti-transfer.jpg" in text
    assert_kept(resp, data)
    assert count(Ticket) == 0 and count(Customer) == 0


def test_invalid_phone_is_named_and_input_kept(app, client, queues):
    data = fields(phone="bukan nomor")
    resp = client.post("/form", data=data)
    assert resp.status_code == 200 and "is not a phone number" in text_of(resp)
    assert_kept(resp, data)
    assert count(Ticket) == 0


def test_oversize_file_is_refused_with_a_clear_message(app_factory, queues):
    app = app_factory(MAX_ATTACHMENT_BYTES=1024 * 1024)
    with app.app_context():
        client = app.test_client()
        data = fields()
        files = [(io.BytesIO(b"small"), "kecil.txt", "text/plain"),
                 (io.BytesIO(b"x" * (1024 * 1024 + 1)), "video-besar.mp4", "video/mp4")]
        resp = client.post("/form", data={**data, "attachments": files}, content_type="multipart/form-data")
        assert resp.status_code == 200
        text = text_of(resp)
        assert "'video-besar.mp4' is larger than the limit of 1 MB" in text
        assert "kecil.txt" in text  # named among the files to choose again
        assert_kept(resp, data)
        assert count(Ticket) == 0 and count(Customer) == 0 and count(Attachment) == 0


def test_normal_form_needs_the_csrf_token(csrf_app, queues):
    client = csrf_app.test_client()
    resp = client.post("/form", data=fields())
    assert resp.status_code == 400 and "csrf" in resp.get_data(as_text=True).lower()
    assert count(Ticket) == 0
    token = extract_csrf(client.get("/form").get_data(as_text=True))
    assert client.post("/form", data={**fields(), "csrf_token": token}).status_code == 303
    assert count(Ticket) == 1


# ---------------------------------------------------------------- the embeddable form

def test_embed_may_be_framed_by_configured_origins_only(app_factory, queues):
    app = app_factory(WEBFORM_FRAME_ORIGINS=["https://www.perusahaan.co.id"])
    with app.app_context():
        client = app.test_client()
        resp = client.get("/form/embed")
        csp = resp.headers["Content-Security-Policy"]
        assert "frame-ancestors 'self' https://www.perusahaan.co.id" in csp and "script-src 'self'" in csp
        assert "X-Frame-Options" not in resp.headers
        assert 'class="navbar' not in resp.get_data(as_text=True)  # no portal chrome
        normal = client.get("/form")
        assert "frame-ancestors 'none'" in normal.headers["Content-Security-Policy"]
        assert normal.headers["X-Frame-Options"] == "DENY"
        done = client.get("/form/embed/done/" + tokens_in(app, tokens.make_done_token, 1234))
        assert "https://www.perusahaan.co.id" in done.headers["Content-Security-Policy"]
        assert "X-Frame-Options" not in done.headers and "#1234" in text_of(done)


def tokens_in(app, fn, *args):
    with app.test_request_context():
        return fn(*args)


def test_embed_works_without_a_session_cookie(csrf_app, queues):
    browser = FlaskClient(csrf_app, csrf_app.response_class, use_cookies=False)
    token = embed_token(browser)
    resp = browser.post("/form/embed?lang=en", data={**fields(), "form_token": token})
    assert resp.status_code == 303 and "/form/embed/done/" in resp.headers["Location"]
    ticket = only_ticket()
    assert ticket.channel == "web" and ticket.queue.slug == "technical-support"
    page = browser.get(resp.headers["Location"])
    assert f"#{ticket.number}" in text_of(page) and "Thank you" in text_of(page)


def _expired_form_token(app):
    class PastSigner(TimestampSigner):
        def get_timestamp(self):
            return int(time.time()) - app.config["WEBFORM_TOKEN_MAX_AGE"] - 60

    return URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=tokens.FORM_SALT,
                                  signer=PastSigner).dumps({"f": "embed"})


def test_embed_rejects_missing_tampered_and_expired_tokens(csrf_app, queues):
    browser = FlaskClient(csrf_app, csrf_app.response_class, use_cookies=False)
    good = embed_token(browser)
    forged = URLSafeTimedSerializer("another-secret", salt=tokens.FORM_SALT).dumps({"f": "embed"})
    cases = {"missing": None, "tampered": good[:-2] + ("AA" if not good.endswith("AA") else "BB"), "forged": forged,
             "expired": _expired_form_token(csrf_app)}
    for case, token in cases.items():
        data = fields(message=f"Pesan {case}")
        if token:
            data["form_token"] = token
        resp = browser.post("/form/embed?lang=en", data=data)
        assert resp.status_code == 400, case
        text = text_of(resp)
        assert ("open for too long" if case == "expired" else "could not be checked") in text, case
        assert_kept(resp, data)
        assert embed_token_of(resp) not in (None, token)  # a fresh token to send again
        assert count(Ticket) == 0, case
    # The fresh token of the error page works.
    resp = browser.post("/form/embed?lang=en", data={**fields(), "form_token": embed_token_of(resp)})
    assert resp.status_code == 303 and count(Ticket) == 1


def embed_token_of(resp):
    m = re.search(r'name="form_token" type="hidden" value="([^"]+)"', resp.get_data(as_text=True))
    return m.group(1) if m else None


def test_confirmation_link_is_signed_and_expires(app_factory, queues):
    app = app_factory(WEBFORM_DONE_MAX_AGE=-1)  # every confirmation link is already too old
    with app.app_context():
        client = app.test_client()
        resp = client.post("/form", data=fields())
        page = client.get(resp.headers["Location"])
        assert page.status_code == 400 and "This page has expired" in text_of(page)
        assert str(only_ticket().number) not in text_of(page)
    app = app_factory()
    with app.app_context():
        client = app.test_client()
        number = only_ticket().number
        assert client.get(f"/form/done/{number}").status_code == 400
        token = tokens_in(app, tokens.make_done_token, number)
        assert client.get(f"/form/done/{token[:-3]}xyz").status_code == 400


# ---------------------------------------------------------------- language and page hygiene

@pytest.mark.parametrize("path", ["/form", "/form/embed"])
def test_pages_are_indonesian_by_default_english_one_click_away(app, queues, path):
    browser = FlaskClient(app, app.response_class, use_cookies=True)
    page = browser.get(path)
    text = text_of(page)
    assert "Hubungi kami" in text and "Kirim" in text and "Contact us" not in text
    assert re.search(rf'href="({path})?\?lang=en"', page.get_data(as_text=True))
    assert "Contact us" in text_of(browser.get(path + "?lang=en"))
    html = page.get_data(as_text=True)
    assert not re.search(r"<script(?![^>]*\bsrc=)", html) and " style=" not in html and "<style" not in html
