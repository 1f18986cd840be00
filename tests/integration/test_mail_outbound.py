"""Outbound mail against a real SMTP server (aiosmtpd, tests/smtp_server.py): what arrives, byte for byte.

Acknowledgements, agent replies with attachments and Cc, agent notifications, refused-file notices;
stored and threaded Message-IDs, the ticket tag, both languages and the bilingual mail, the
automatic-mail headers, header injection, the automatic-mail budget and an out-of-office loop.
"""
import re
from datetime import timedelta
from email import message_from_bytes, policy

import pytest
from sqlalchemy import func, select

from helpdesk import jobs
from helpdesk.customers.models import CustomerEmail
from helpdesk.extensions import db
from helpdesk.jobs import OutboxJob
from helpdesk.mail import budget, outbound, tokens
from helpdesk.mail.jobs import send_outbound
from helpdesk.mail.models import AutoMailLog, Mailbox, MailMessageId, OutboundMail
from helpdesk.tickets import services
from helpdesk.tickets.models import Message, Ticket
from helpdesk.timeutil import utcnow
from tests.factories import Factories
from tests.conftest import work_jobs as work
from tests.smtp_server import private_smtp, shared_smtp, smtp_app, smtp_server  # noqa: F401  (fixtures)

INDONESIAN = "Permintaan Anda sudah kami terima"
ENGLISH = "We received your request"


# ---------------------------------------------------------------- helpers


@pytest.fixture
def mail_app(smtp_app):
    """An app whose mail really goes to the test SMTP server."""
    return smtp_app()


@pytest.fixture
def world(mail_app):
    make = Factories()
    tech = make.queue(slug="technical-support", name="Technical Support")
    billing_q = make.queue(slug="billing", name="Billing")
    agent = make.user(email="rina@desk.example", name="Rina Wulandari", roles=["technical_support"], queues=[tech])
    english_agent = make.user(email="john@desk.example", name="John Smith", roles=["technical_support"],
                              queues=[tech], locale="en")
    biller = make.user(email="bayu@desk.example", name="Bayu", roles=["billing"], queues=[billing_q])
    cust_id = make.customer(name="Dewi Lestari", email="dewi@tokodewi.co.id", language="id")
    cust_en = make.customer(name="Jane Doe", email="jane@example.com", language="en")
    cust_unknown = make.customer(name="Budi", email="budi@example.org")
    db.session.commit()
    return make, dict(tech=tech.id, billing=billing_q.id, agent=agent.id, english_agent=english_agent.id,
                      biller=biller.id, cust_id=cust_id.id, cust_en=cust_en.id, cust_unknown=cust_unknown.id)


def new_ticket(ids, customer="cust_id", subject="Website tidak bisa dibuka", body="Error 500 sejak pagi.", **kw):
    return services.create_ticket(customer_id=ids[customer], subject=subject, body_text=body, channel="email",
                                  queue_id=ids["tech"], **kw)


def ack(ticket_id, to=None):
    row = outbound.queue_acknowledgement(ticket_id, to)
    db.session.commit()
    return row


def headers(received, name):
    return received.message.get_all(name) or []


# ---------------------------------------------------------------- acknowledgements

def test_acknowledgement_arrives_with_stored_message_id_tag_and_automatic_headers(world, smtp_server, mail_app):
    make, ids = world
    t = new_ticket(ids)
    db.session.commit()
    number, tid = t.number, t.id
    row = ack(tid)
    row_id, mid = row.id, row.message_id
    work()
    [got] = smtp_server.to("dewi@tokodewi.co.id")
    assert got.rcpt_tos == ["dewi@tokodewi.co.id"]
    assert got.message_id == mid
    assert tokens.ticket_from_message_id(mid, "test-secret") == tid  # signed with the app's secret
    stored = db.session.get(MailMessageId, mid)
    assert (stored.ticket_id, stored.direction) == (tid, "out")
    row = db.session.get(OutboundMail, row_id)
    assert (row.status, row.attempts, row.kind, row.automatic) == ("sent", 1, "ack", True)
    assert row.sent_at is not None
    assert got["Subject"] == f"[#{number}] {INDONESIAN}: Website tidak bisa dibuka"
    assert got["Auto-Submitted"] == "auto-replied"
    assert got["X-Auto-Response-Suppress"] == "All"
    assert got["In-Reply-To"] is None  # a web ticket: nothing to answer yet
    assert got.message.get_content_type() == "multipart/alternative"
    assert f"#{number}" in got.text and "Halo Dewi Lestari," in got.text and "Langkah selanjutnya" in got.text
    assert f"#{number}" in got.html and "<li>Anda akan menerima jawaban pertama kami paling lambat <strong>" in got.html
    assert ENGLISH not in got.text and "What happens next" not in got.text
    link = re.search(r"(http://\S+/portal/t/\S+)", got.text).group(1)
    page = mail_app.test_client().get(link[link.index("/portal/"):])
    assert page.status_code == 200 and f"#{number}" in page.get_data(as_text=True)
    # a second call (the ingest reprocessing the same message) does not acknowledge twice
    assert outbound.queue_acknowledgement(tid).id == row_id
    db.session.commit()
    work()
    assert len(smtp_server.to("dewi@tokodewi.co.id")) == 1


def test_languages_english_and_bilingual_indonesian_first(world, smtp_server):
    make, ids = world
    en = new_ticket(ids, customer="cust_en", subject="Domain expired")
    unknown = new_ticket(ids, customer="cust_unknown", subject="Hosting penuh")
    db.session.commit()
    unknown_id, unknown_number = unknown.id, unknown.number
    ack(en.id)
    ack(unknown.id)
    work()
    [english] = smtp_server.to("jane@example.com")
    assert english["Subject"].endswith(f"{ENGLISH}: Domain expired")
    assert "Hello Jane Doe," in english.text and "What happens next" in english.text
    assert "Halo" not in english.text and INDONESIAN not in english.html
    assert english["Content-Language"] == "en"
    [both] = smtp_server.to("budi@example.org")
    assert both["Subject"].startswith(f"[#{unknown_number}] {INDONESIAN}: Hosting penuh / {ENGLISH}")
    for part in (both.text, both.html):
        assert 0 <= part.index("Halo Budi,") < part.index("Hello Budi,")
        assert 0 <= part.index("Langkah selanjutnya") < part.index("What happens next")
    assert '<div lang="id">' in both.html and '<div lang="en">' in both.html
    assert both["Content-Language"] == "id, en"
    assert db.session.execute(select(OutboundMail.locale).where(OutboundMail.ticket_id == unknown_id,
                                                                OutboundMail.kind == "ack")).scalar_one() is None


def test_web_form_ticket_is_acknowledged_once(world, smtp_server, mail_app):
    make, ids = world
    resp = mail_app.test_client().post("/form", data={"name": "Sari", "email": "Sari@Contoh.co.id", "topic": "website",
                                      "subject": "Toko online lambat", "message": "Halaman produk lambat sekali."})
    assert resp.status_code == 303
    work()
    number = db.session.execute(select(Ticket.number).where(Ticket.subject == "Toko online lambat")).scalar_one()
    [got] = smtp_server.to("sari@contoh.co.id")
    assert got["Subject"].startswith(f"[#{number}] ") and got["Auto-Submitted"] == "auto-replied"
    assert got.message_id == db.session.execute(select(OutboundMail.message_id)
                                                .where(OutboundMail.kind == "ack")).scalar_one()
    # the agents of the queue were told too, each once
    assert [m["Subject"] for m in smtp_server.to("rina@desk.example")] == [f"[#{number}] Tiket baru: Toko online lambat"]


# ---------------------------------------------------------------- threading, agent replies, attachments, Cc

def test_thread_headers_reply_subject_attachments_and_cc(world, smtp_server):
    make, ids = world
    t = new_ticket(ids, subject=f"Re: [#{1001}] Website tidak bisa dibuka")  # the next number is 1001
    assert t.number == 1001
    first = db.session.execute(select(Message).where(Message.ticket_id == t.id)).scalar_one()
    first.email_message_id = "CAF=original-1@mail.tokodewi.co.id"  # as the ingest stores an inbound mail
    db.session.add(MailMessageId(message_id="CAF=original-1@mail.tokodewi.co.id", ticket_id=t.id,
                                 message_row_id=first.id, direction="in"))
    db.session.add(MailMessageId(message_id="hash:" + "0" * 64, ticket_id=t.id, direction="in"))  # a dedupe key
    t.cc_addresses = ["boss@tokodewi.co.id", "Finance@TokoDewi.co.id"]
    db.session.commit()
    tid, number = t.id, t.number
    ack_row = ack(tid)
    ack_mid = ack_row.message_id
    pdf = b"%PDF-1.4\n" + bytes(range(256)) * 40
    png = b"\x89PNG\r\n\x1a\n" + b"\x00\xff" * 500
    msg = services.add_agent_message(tid, ids["agent"], body_text="Sudah kami perbaiki.\nSilakan dicek.",
                                     files=[("laporan perbaikan.pdf", "application/pdf", pdf),
                                            ("tangkapan-layar-ü.png", "image/png", png)])
    db.session.commit()
    msg_id = msg.id
    work()

    [got_ack] = smtp_server.to("dewi@tokodewi.co.id")[:1]
    assert got_ack["In-Reply-To"] == "<CAF=original-1@mail.tokodewi.co.id>"
    assert got_ack["References"] == "<CAF=original-1@mail.tokodewi.co.id>"
    assert got_ack["Subject"].count(f"[#{number}]") == 1

    reply = next(m for m in smtp_server.to("dewi@tokodewi.co.id") if m.message_id != ack_mid)
    stored = db.session.get(Message, msg_id).email_message_id
    row = db.session.execute(select(OutboundMail).where(OutboundMail.kind == "reply")).scalar_one()
    assert reply.message_id == stored == row.message_id
    assert db.session.get(MailMessageId, stored).message_row_id == msg_id
    assert reply["Subject"] == f"Re: [#{number}] Website tidak bisa dibuka"  # the tag once, one "Re:"
    assert reply["In-Reply-To"] == f"<{ack_mid}>"
    assert reply["References"].split() == ["<CAF=original-1@mail.tokodewi.co.id>", f"<{ack_mid}>"]
    assert reply["Auto-Submitted"] is None and reply["X-Auto-Response-Suppress"] is None  # a person wrote it
    assert str(reply["To"]) == "Dewi Lestari <dewi@tokodewi.co.id>"
    assert [a.addr_spec for a in reply["Cc"].addresses] == ["boss@tokodewi.co.id", "Finance@tokodewi.co.id"]
    assert sorted(reply.rcpt_tos, key=str.lower) == ["boss@tokodewi.co.id", "dewi@tokodewi.co.id",
                                                     "Finance@tokodewi.co.id"]
    assert reply.message.get_content_type() == "multipart/mixed"
    assert reply.attachments() == [("laporan perbaikan.pdf", "application/pdf", pdf),
                                   ("tangkapan-layar-ü.png", "image/png", png)]
    assert reply.text.startswith("Sudah kami perbaiki.\nSilakan dicek.")
    assert "Sudah kami perbaiki.<br>" in reply.html and "/portal/t/" in reply.text
    assert row.automatic is False and row.status == "sent"
    assert db.session.scalar(select(func.count()).select_from(AutoMailLog)
                             .where(AutoMailLog.outbound_id == row.id)) == 0  # not counted in the budget


def test_email_ticket_acknowledged_before_its_message_is_linked_still_threads_and_uses_reply_to(world, smtp_server):
    """The ingest creates the ticket, asks for the acknowledgement, then links the inbound
    Message-ID; the customer gave a Reply-To, which is where mail to them goes."""
    make, ids = world
    t = new_ticket(ids, subject="Tidak bisa login cPanel")
    db.session.flush()
    db.session.add(MailMessageId(message_id="inbound-42@mail.tokodewi.co.id", direction="in"))  # stored raw first
    t.reply_to = "admin@tokodewi.co.id"
    row = outbound.queue_acknowledgement(t.id)
    assert row.in_reply_to is None
    db.session.get(MailMessageId, "inbound-42@mail.tokodewi.co.id").ticket_id = t.id  # linked afterwards
    db.session.commit()
    tid, row_id = t.id, row.id
    work()
    [got] = smtp_server.to("admin@tokodewi.co.id")
    assert smtp_server.to("dewi@tokodewi.co.id") == []
    assert got["In-Reply-To"] == "<inbound-42@mail.tokodewi.co.id>" == got["References"]
    assert db.session.get(OutboundMail, row_id).in_reply_to == "inbound-42@mail.tokodewi.co.id"
    services.add_agent_message(tid, ids["agent"], body_text="Sudah kami reset.")
    db.session.commit()
    work()
    assert len(smtp_server.to("admin@tokodewi.co.id")) == 2 and smtp_server.to("dewi@tokodewi.co.id") == []
    # the ingest's wording of a refusal is understood and translated
    assert [outbound.refusal_code(r) for r in ("larger than 25 MB", "file type .exe is not accepted",
                                               "infected: Eicar-Signature", "something else")] == \
        ["too_large", "blocked_type", "infected", "something else"]


def test_references_are_capped_to_the_first_and_the_newest(world):
    make, ids = world
    t = new_ticket(ids)
    db.session.flush()
    start = utcnow() - timedelta(days=1)
    for i in range(30):
        db.session.add(MailMessageId(message_id=f"m{i:02d}@example.com", ticket_id=t.id, direction="in",
                                     created_at=start + timedelta(minutes=i)))
    other = new_ticket(ids, subject="merged away")
    db.session.flush()
    db.session.add(MailMessageId(message_id="merged@example.com", ticket_id=other.id, direction="in",
                                 created_at=start + timedelta(minutes=45)))
    other.merged_into_id = t.id
    db.session.flush()
    in_reply_to, references = outbound.thread_headers(t.id)
    refs = references.split()
    assert in_reply_to == "merged@example.com"  # ids of a ticket merged into this one still thread
    assert len(refs) == outbound.MAX_REFERENCES == 20
    assert refs[0] == "m00@example.com" and refs[1] == "m12@example.com" and refs[-1] == "merged@example.com"


def test_mailbox_from_plus_address_reply_to_and_sender_fallbacks(world, smtp_server, mail_app):
    make, ids = world
    box = Mailbox(name="support", host="127.0.0.1", username="support", queue_id=ids["tech"],
                  from_address="support@tokoku.co.id", from_name="Dukungan\r\nBcc: evil@example.com Tokoku",
                  plus_addressing=True)
    db.session.add(box)
    db.session.flush()
    with_box = new_ticket(ids, subject="Lewat mailbox")
    with_box.mailbox_id = box.id
    plain = new_ticket(ids, customer="cust_en", subject="Default sender")
    db.session.commit()
    box_ticket = with_box.id
    mail_app.config["IMAP_FROM"] = "Helpdesk Tokoku <imap-from@tokoku.co.id>"
    ack(with_box.id)
    ack(plain.id)
    work()
    [boxed] = smtp_server.to("dewi@tokodewi.co.id")
    assert boxed["From"].addresses[0].addr_spec == "support@tokoku.co.id"
    assert boxed["From"].addresses[0].display_name == "Dukungan Bcc: evil@example.com Tokoku"
    assert boxed.mail_from == "support@tokoku.co.id"
    reply_to = boxed["Reply-To"].addresses[0].addr_spec
    assert reply_to.startswith("support+t") and reply_to.endswith("@tokoku.co.id")
    assert tokens.ticket_from_address(reply_to, "test-secret") == box_ticket
    assert boxed.message_id.endswith("@tokoku.co.id")
    assert b"\nBcc:" not in boxed.raw and boxed.rcpt_tos == ["dewi@tokodewi.co.id"]
    [fallback] = smtp_server.to("jane@example.com")
    assert str(fallback["From"]) == "Helpdesk Tokoku <imap-from@tokoku.co.id>" and fallback["Reply-To"] is None
    mail_app.config["IMAP_FROM"] = None
    assert outbound.sender_for(None)[0] == mail_app.config["MAIL_DEFAULT_SENDER"] == "helpdesk@localhost"


# ---------------------------------------------------------------- notifications to agents

def test_notifications_new_ticket_customer_reply_billing_and_assignment(world, smtp_server):
    make, ids = world
    t = new_ticket(ids, subject="Email kantor mati")
    db.session.commit()
    tid, number = t.id, t.number
    work()
    rina = smtp_server.to("rina@desk.example")
    john = smtp_server.to("john@desk.example")
    assert [m["Subject"] for m in rina] == [f"[#{number}] Tiket baru: Email kantor mati"]  # default locale: id
    assert [m["Subject"] for m in john] == [f"[#{number}] New ticket: Email kantor mati"]  # his own: en
    assert "Technical Support" in john[0].text and "Error 500 sejak pagi." in john[0].text
    assert f"/tickets/{number}" in rina[0].text and "Tiket baru #" in rina[0].text
    for m in rina + john:
        assert m["Auto-Submitted"] == "auto-generated" and m["X-Auto-Response-Suppress"] == "All"
        assert m.message_id in {r.message_id for r in db.session.execute(select(OutboundMail)).scalars()}
    assert smtp_server.to("bayu@desk.example") == [] and smtp_server.to("dewi@tokodewi.co.id") == []

    smtp_server.clear()
    services.assign(tid, ids["agent"], ids["english_agent"])
    db.session.commit()
    work()
    assert [m["Subject"] for m in smtp_server.messages] == [f"[#{number}] Assigned to you: Email kantor mati"]
    assert smtp_server.messages[0].rcpt_tos == ["john@desk.example"]

    smtp_server.clear()
    services.add_customer_message(tid, ids["cust_id"], body_text="Masih mati sampai sekarang.")
    db.session.commit()
    work()
    [m] = smtp_server.messages
    assert m.rcpt_tos == ["john@desk.example"] and m["Subject"] == f"[#{number}] Customer replied: Email kantor mati"
    assert "Masih mati sampai sekarang." in m.text and m["Auto-Submitted"] == "auto-generated"

    smtp_server.clear()
    services.change_status(tid, ids["english_agent"], "pending_billing")
    services.add_customer_message(tid, ids["cust_id"], body_text="Sudah saya transfer.")
    db.session.commit()
    work()
    got = {m.rcpt_tos[0]: m["Subject"] for m in smtp_server.messages}
    assert got == {"john@desk.example": f"[#{number}] Customer replied: Email kantor mati",
                   "bayu@desk.example": f"[#{number}] Pelanggan membalas: Email kantor mati"}
    assert "menunggu billing" in smtp_server.to("bayu@desk.example")[0].text


def test_refused_files_notice(world, smtp_server):
    make, ids = world
    t = new_ticket(ids, customer="cust_unknown", subject="Kirim berkas")
    db.session.commit()
    number, tid = t.number, t.id
    outbound.queue_refused_files(tid, "budi@example.org", [("setup.exe", "blocked_type"),
                                                            ("video<b>.mp4", "too_large"),
                                                            ("x.zip", "scanner said no")])
    db.session.commit()
    work()
    [got] = smtp_server.to("budi@example.org")
    assert got["Auto-Submitted"] == "auto-replied" and got["X-Auto-Response-Suppress"] == "All"
    assert got["Subject"].startswith(f"[#{number}] Lampiran tidak kami terima: Kirim berkas / ")
    assert "- setup.exe: jenis berkas ini tidak diterima" in got.text
    assert "- setup.exe: this type of file is not accepted" in got.text
    assert "- video<b>.mp4: melebihi batas ukuran" in got.text and "- x.zip: scanner said no" in got.text
    assert "<strong>video&lt;b&gt;.mp4</strong>" in got.html and "<b>" not in got.html.replace("<body", "")
    assert "/portal/t/" in got.text  # the sender is the ticket's customer
    # a stranger who wrote on the ticket is told too, without a link into the customer's ticket
    outbound.queue_refused_files(tid, "stranger@example.net", [("a.exe", "blocked_type")])
    db.session.commit()
    work()
    [other] = smtp_server.to("stranger@example.net")
    assert "/portal/" not in other.text and "a.exe" in other.text


# ---------------------------------------------------------------- header injection

def test_cr_lf_in_subject_and_customer_name_cannot_add_headers(world, smtp_server):
    make, ids = world
    evil = make.customer(name="Eve\r\nBcc: victim@example.com\r\n\r\nInjected body", email="eve@example.com",
                         language="en")
    db.session.commit()
    t = services.create_ticket(customer_id=evil.id, subject="Hello\r\nBcc: victim@example.com\nX-Evil: 1\tend",
                               body_text="hi", channel="web", queue_id=ids["tech"])
    db.session.commit()
    ack(t.id)
    services.add_agent_message(t.id, ids["agent"], body_text="Answer")
    # NUL cannot even be stored in PostgreSQL text: a subject handed to the mail code directly
    outbound.queue_mail("reply", ticket=t, to=["eve@example.com"], subject="Hello\x00\r\nBcc: victim@example.com",
                        automatic=False)
    db.session.commit()
    work()
    got = smtp_server.to("eve@example.com")
    assert len(got) == 3 and smtp_server.to("victim@example.com") == []
    for m in got:
        raw_headers = m.raw.split(b"\r\n\r\n", 1)[0]
        names = [line.split(b":", 1)[0].lower() for line in raw_headers.split(b"\r\n")
                 if line and not line[:1].isspace()]
        assert b"bcc" not in names and b"x-evil" not in names
        assert b"\x00" not in m.raw
        assert m.rcpt_tos == ["eve@example.com"]
        assert re.search(r"Hello Bcc: victim@example.com( X-Evil: 1 end)?$", m["Subject"])
        assert m["To"].addresses[0].display_name == "Eve Bcc: victim@example.com Injected body"
        assert m["To"].addresses[0].addr_spec == "eve@example.com"
        assert "\n" not in m["Subject"] and "\r" not in m["Subject"]
    stored = db.session.execute(select(OutboundMail.subject)).scalars().all()
    assert all("\n" not in s and "\r" not in s and "\x00" not in s for s in stored)


def test_unusable_addresses_are_dropped_not_sent(world, smtp_server):
    make, ids = world
    t = new_ticket(ids)
    t.cc_addresses = ["ok@example.com", "bad\r\nBcc: x@example.com", "not-an-address", "a@b@c",
                      "anonim-7@invalid", "müller@example.com", "info@bücher.example"]
    db.session.commit()
    services.add_agent_message(t.id, ids["agent"], body_text="Jawaban")
    db.session.commit()
    work()
    [reply] = smtp_server.to("dewi@tokodewi.co.id")
    assert sorted(reply.rcpt_tos) == ["dewi@tokodewi.co.id", "info@xn--bcher-kva.example", "ok@example.com"]


# ---------------------------------------------------------------- the budget

def test_eleventh_automatic_mail_to_one_address_in_an_hour_is_held(world, smtp_server, mail_app):
    make, ids = world
    assert mail_app.config["MAIL_BUDGET_PER_ADDRESS_HOUR"] == 10
    tickets = [new_ticket(ids, subject=f"Pertanyaan {i}") for i in range(11)]
    db.session.commit()
    first_id = tickets[0].id
    rows = [ack(t.id) for t in tickets]
    assert [r.status for r in rows] == ["queued"] * 10 + ["held"]
    held_id = rows[-1].id
    assert "10 automatic mails to dewi@tokodewi.co.id" in rows[-1].last_error
    work()
    assert len(smtp_server.to("dewi@tokodewi.co.id")) == 10
    # the agents' new-ticket notifications went over their own budgets too: one each
    held = {r.id: (r.kind, r.to_addrs) for r in budget.recent_held()}
    assert budget.held_count() == len(held) == 3 and held[held_id] == ("ack", ["dewi@tokodewi.co.id"])
    assert sorted(held.values()) == [("ack", ["dewi@tokodewi.co.id"]), ("notify_new", ["john@desk.example"]),
                                     ("notify_new", ["rina@desk.example"])]
    assert db.session.get(OutboundMail, held_id).status == "held"
    # an agent's reply is never held
    services.add_agent_message(first_id, ids["agent"], body_text="Jawaban manusia")
    db.session.commit()
    work()
    assert len(smtp_server.to("dewi@tokodewi.co.id")) == 11
    # an hour later the window is free again
    later = utcnow() + timedelta(hours=1, minutes=1)
    assert budget.allow(["dewi@tokodewi.co.id"], None, later) == (True, None)
    assert budget.allow(["dewi@tokodewi.co.id"], None)[0] is False
    # an admin sends the held one anyway
    assert outbound.release_held(held_id).status == "queued"
    db.session.commit()
    work()
    assert len(smtp_server.to("dewi@tokodewi.co.id")) == 12 and budget.held_count() == 2


def test_per_ticket_budget_counts_outside_recipients_only(world, smtp_server, mail_app):
    make, ids = world
    mail_app.config["MAIL_BUDGET_PER_TICKET_HOUR"] = 3
    t = new_ticket(ids, customer="cust_unknown")
    db.session.commit()
    rows = [outbound.queue_refused_files(t.id, f"sender{i}@example.net", [("a.exe", "blocked_type")])
            for i in range(4)]
    db.session.commit()
    assert [r.status for r in rows] == ["queued"] * 3 + ["held"]
    assert "about ticket" in rows[-1].last_error
    # notifications to agents do not use up the ticket's window
    for _ in range(4):
        services.add_customer_message(t.id, ids["cust_unknown"], body_text="lagi")
    db.session.commit()
    statuses = db.session.execute(select(OutboundMail.status).where(OutboundMail.kind == "notify_reply")).scalars()
    assert set(statuses) == {"queued"}


def test_released_held_notice_keeps_its_details(world, smtp_server, mail_app):
    make, ids = world
    mail_app.config["MAIL_BUDGET_PER_ADDRESS_HOUR"] = 0
    t = new_ticket(ids, customer="cust_en")
    db.session.commit()
    row = outbound.queue_refused_files(t.id, "jane@example.com", [("huge.iso", "too_large")])
    db.session.commit()
    assert row.status == "held"
    work()
    assert smtp_server.to("jane@example.com") == []
    outbound.release_held(row.id)
    db.session.commit()
    work()
    [got] = smtp_server.to("jane@example.com")
    assert "- huge.iso: larger than the size limit" in got.text


def test_out_of_office_robot_answering_every_mail_causes_no_storm(world, smtp_server, mail_app):
    """A robot answers every mail it gets; its answers are not recognised as auto-replies and do not
    thread (the worst case): each becomes a new ticket with an acknowledgement, and a reply on its
    ticket notifies the agent. The budget stops the exchange at 10 mails per address and hour."""
    make, ids = world
    robot = make.customer(name="Kantor Tutup", email="robot@autoresponder.example")
    db.session.commit()
    robot_id = robot.id
    t = services.create_ticket(customer_id=robot_id, subject="Pertanyaan", body_text="Halo", channel="email",
                               queue_id=ids["tech"], assignee_id=ids["agent"])
    db.session.commit()
    first = t.id
    ack(first)
    answered = set()
    for _ in range(40):  # rounds: deliver, let the robot answer what it got
        work()
        new = [m for m in smtp_server.to("robot@autoresponder.example") if m.message_id not in answered]
        if not new:
            break
        for m in new:
            answered.add(m.message_id)
            services.add_customer_message(first, robot_id, body_text=f"Saya sedang cuti. Re: {m['Subject']}")
            fresh = services.create_ticket(customer_id=robot_id, subject=f"Out of office: {m['Subject']}",
                                           body_text="Saya sedang cuti.", channel="email", queue_id=ids["tech"])
            db.session.flush()
            outbound.queue_acknowledgement(fresh.id)
            db.session.commit()
    else:
        pytest.fail("the exchange with the robot did not stop")
    assert len(smtp_server.to("robot@autoresponder.example")) == 10
    assert len(smtp_server.to("rina@desk.example")) <= 10
    held = db.session.scalar(select(func.count()).select_from(OutboundMail).where(OutboundMail.status == "held"))
    assert held > 0 and budget.held_count() == held


def test_no_automatic_mail_to_bouncing_address_or_automated_sender(world, smtp_server):
    make, ids = world
    db.session.execute(CustomerEmail.__table__.update().where(CustomerEmail.email == "jane@example.com")
                       .values(bouncing_at=utcnow(), bounce_reason="5.1.1"))
    bouncing = new_ticket(ids, customer="cust_en")
    robot = new_ticket(ids, customer="cust_unknown", subject="ALERT disk full")
    robot.automated_sender = True
    db.session.commit()
    assert outbound.queue_acknowledgement(bouncing.id) is None
    assert outbound.queue_acknowledgement(robot.id) is None
    assert outbound.queue_refused_files(robot.id, "budi@example.org", [("a.exe", "blocked_type")]) is None
    services.add_agent_message(bouncing.id, ids["agent"], body_text="A person may still write")
    db.session.commit()
    work()
    assert len(smtp_server.to("jane@example.com")) == 1  # the agent's reply only
    assert smtp_server.to("budi@example.org") == []
    # agents are still told about the machine's ticket: it may be real work
    assert any("ALERT disk full" in m["Subject"] for m in smtp_server.to("rina@desk.example"))


# ---------------------------------------------------------------- idempotence and failures

def test_a_sent_mail_is_never_sent_again(world, smtp_server):
    make, ids = world
    t = new_ticket(ids)
    db.session.commit()
    row_id = ack(t.id).id
    [job_id] = [j.id for j in db.session.execute(select(OutboxJob)).scalars() if list(j.args) == [row_id]]
    work()
    assert send_outbound(row_id) == "sent"  # the function itself, run again: nothing sent
    assert jobs.execute(job_id) == "skipped"
    assert jobs.push([job_id]) == 0  # done rows are not pushed again
    jobs.get_queue("mail").enqueue("helpdesk.jobs.execute", job_id)  # a stray duplicate in Redis
    work()
    mid = db.session.get(OutboundMail, row_id).message_id
    assert smtp_server.by_message_id()[mid] == 1
    assert db.session.get(OutboundMail, row_id).attempts == 1


def test_a_permanent_refusal_marks_the_mail_failed_without_retrying(world, smtp_server):
    make, ids = world
    smtp_server.reject.add("dewi@tokodewi.co.id")
    t = new_ticket(ids)
    db.session.commit()
    row_id = ack(t.id).id
    work()
    row = db.session.get(OutboundMail, row_id)
    assert row.status == "failed" and "550" in row.last_error and row.attempts == 1
    assert smtp_server.to("dewi@tokodewi.co.id") == []


def test_raw_message_parses_cleanly(world, smtp_server):
    make, ids = world
    t = new_ticket(ids, customer="cust_unknown", subject="Tagihan ganda — mohon dicek ✓")
    db.session.commit()
    ack(t.id)
    work()
    [got] = smtp_server.to("budi@example.org")
    parsed = message_from_bytes(got.raw, policy=policy.strict)
    assert not parsed.defects
    assert all(len(line) <= 998 for line in got.raw.split(b"\r\n"))
    assert max(got.raw) < 128  # 7-bit clean on the wire: encoded words and transfer encodings
    assert "Tagihan ganda — mohon dicek ✓" in parsed["Subject"]
