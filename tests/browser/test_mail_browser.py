"""The email channel in a real browser: customer mail fetched from a private Dovecot becomes a
ticket; the agent sees the inline image, the threading rule and the full original, replies, and
the reply reaches a real SMTP server threaded; the admin reads the inbound log and turns a
spam-flagged message into a ticket. Screenshots for the README."""
import base64
from email.message import EmailMessage

import pytest
from flask_babel import force_locale, gettext
from sqlalchemy import select

from helpdesk.extensions import db
from helpdesk.mail import crypto, fetch
from helpdesk.mail.models import InboundMessage, Mailbox
from helpdesk.tickets.models import Ticket
from tests.browser.helpers import SHOTS, desk_page
from tests.dovecot import dovecot, imap_user  # noqa: F401
from tests.factories import PASSWORD
from tests.mailgen import mail
from tests.smtp_server import shared_smtp, smtp_server  # noqa: F401

pytestmark = pytest.mark.browser

LOCALE = "en"
# a 16x16 red PNG
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAABAAAAAQCAIAAACQkWg2AAAAFklEQVR4nGP8z8DAQApgIkn1qIZhowEAmVMBH3eUzdsAAAAASUVORK5CYII=")


def _text(message, **kw):
    with force_locale(LOCALE):
        return gettext(message, **kw)


def first_mail():
    m = EmailMessage()
    m["From"] = "Budi Santoso <budi@tokobatikayu.co.id>"
    m["To"] = "support@helpdesk.test"
    m["Cc"] = "Rina Kusuma <rina@tokobatikayu.co.id>"
    m["Subject"] = "Checkout toko online error"
    m["Message-ID"] = "<first.budi@tokobatikayu.co.id>"
    m.set_content("Halo, checkout error. Lihat gambar.")
    m.add_alternative('<p>Halo, <b>checkout</b> error sejak pagi. Lihat gambar:</p><p><img src="cid:shot1" '
                      'alt="Tangkapan layar error"></p>', subtype="html")
    m.get_payload()[1].add_related(PNG, maintype="image", subtype="png", cid="<shot1>", filename="error.png")
    return bytes(m)


@pytest.fixture
def mail_server(mail_live_server, smtp_server):  # noqa: F811
    """The real app (CSRF on) that sends real mail to the test SMTP server."""
    return mail_live_server(smtp_server, "support@helpdesk.test")


def test_mail_becomes_a_ticket_the_agent_answers_and_the_admin_reads_the_log(
        app, make, mail_server, browser, axe_source, imap_user, smtp_server, run_jobs):
    from playwright.sync_api import expect

    server_app, base = mail_server
    app.config["MAIL_DEFAULT_SENDER"] = "support@helpdesk.test"
    tech = make.queue(slug="technical-support", name="Technical Support")
    make.user(email="rina.wulandari@example.com", name="Rina Wulandari", roles=["admin", "technical_support"], queues=[tech])
    db.session.add(Mailbox(name="support", host=imap_user.host, port=imap_user.port, security="plain",
                           username=imap_user.username,
                           password_encrypted=crypto.encrypt(imap_user.password, app.config["SECRET_KEY"]),
                           folder="INBOX", queue_id=tech.id, from_address="support@helpdesk.test",
                           from_name="Helpdesk"))
    db.session.commit()
    imap_user.append("INBOX", first_mail())
    imap_user.append("INBOX", mail(frm="Budi Santoso <budi@tokobatikayu.co.id>", subject="Re: Checkout toko online error",
                                   message_id="<second.budi@tokobatikayu.co.id>",
                                   in_reply_to="<first.budi@tokobatikayu.co.id>",
                                   body="Sekarang muncul error 502 juga.\n\nPada Sen, 30 Nov 2026 09.00, Budi menulis:\n"
                                        "> Halo, checkout error.\n"))
    imap_user.append("INBOX", mail(frm="budi@tokobatikayu.co.id", subject="Out of office: Checkout toko online error",
                                   message_id="<ooo.budi@tokobatikayu.co.id>", headers=[("Auto-Submitted", "auto-replied")]))
    imap_user.append("INBOX", mail(frm="promo@diskon-besar.example", subject="Diskon hosting 90%",
                                   message_id="<spam1@diskon-besar.example>", headers=[("X-Spam-Flag", "YES")]))
    outcomes = fetch.fetch_all()
    assert [o.action for o in outcomes] == ["created", "appended", "ignored", "ignored"]
    ticket = db.session.execute(select(Ticket)).scalar_one()
    number = ticket.number
    with server_app.app_context():  # the app configured with the SMTP server runs the jobs
        run_jobs()  # the acknowledgement goes out
    assert [m["Subject"] for m in smtp_server.to("budi@tokobatikayu.co.id")] and \
        f"[#{number}]" in smtp_server.to("budi@tokobatikayu.co.id")[0]["Subject"]
    smtp_server.clear()

    context, page, watch, shot = desk_page(browser, base, axe_source)

    try:
        page.goto(base + "/login")
        page.get_by_label(_text("Email")).fill("rina.wulandari@example.com")
        page.get_by_label(_text("Password")).fill(PASSWORD)
        page.get_by_role("button", name=_text("Log in")).click()
        expect(page.get_by_role("link", name=_text("Log out")).or_(
            page.get_by_role("button", name=_text("Log out")))).to_be_visible()

        # The ticket: the inline image shows, the reply says how it was threaded, quotes are hidden
        page.goto(f"{base}/tickets/{number}")
        thread = page.locator("#thread")
        expect(page.get_by_role("heading", name=f"#{number} · Checkout toko online error")).to_be_visible()
        image = thread.get_by_role("img", name="Tangkapan layar error")
        expect(image).to_be_visible()
        assert image.evaluate("img => img.naturalWidth") == 16
        expect(thread.get_by_text(_text("threaded by: %(rule)s", rule="In-Reply-To"))).to_be_visible()
        reply = thread.locator("article").nth(1)
        expect(reply).to_contain_text("Sekarang muncul error 502 juga.")
        expect(reply.get_by_text("> Halo, checkout error.")).to_be_hidden()
        reply.get_by_text(_text("Show full original")).click()
        expect(reply.get_by_text("Budi menulis:", exact=False)).to_be_visible()
        expect(page.get_by_text("rina@tokobatikayu.co.id").first).to_be_visible()  # the Cc list
        watch.assert_clean("the email ticket")
        shot("mail-02-ticket")

        # The agent answers; the mail reaches the customer threaded, with the Cc
        page.locator("#reply-body").fill("Halo Pak Budi, error 502 sudah kami perbaiki. Silakan dicoba lagi.")
        page.get_by_role("button", name=_text("Send"), exact=True).click()
        expect(page.get_by_role("alert").filter(has_text=_text("Reply sent."))).to_be_visible()
        watch.assert_clean("the reply")

        # The inbound log: every message with what became of it
        page.goto(base + "/admin/mail/log")
        expect(page.get_by_role("heading", name=_text("Inbound log"))).to_be_visible()
        rows = page.locator("table tbody tr")
        expect(rows).to_have_count(4)
        expect(rows.filter(has_text="Diskon hosting 90%")).to_contain_text("spam")
        expect(rows.filter(has_text="Out of office")).to_contain_text("ignored")
        watch.assert_clean("the inbound log")
        shot("mail-01-inbound-log")

        # The spam message: its headers, then one click makes it a ticket
        rows.filter(has_text="Diskon hosting 90%").get_by_role("link").first.click()
        expect(page.get_by_text("X-Spam-Flag").first).to_be_visible()
        watch.assert_clean("a log entry")
        shot("mail-03-log-entry")
        page.get_by_role("button", name=_text("Make a ticket")).click()
        expect(page.get_by_role("alert")).to_be_visible()
        watch.assert_clean("making a ticket of spam")
    finally:
        context.close()

    with server_app.app_context():
        run_jobs()
    db.session.remove()
    sent = smtp_server.to("budi@tokobatikayu.co.id")
    assert len(sent) == 1
    assert sent[0]["In-Reply-To"].strip() == "<second.budi@tokobatikayu.co.id>"
    assert "rina@tokobatikayu.co.id" in (sent[0]["Cc"] or "")
    assert f"[#{number}]" in sent[0]["Subject"]
    spam = db.session.execute(select(InboundMessage).where(InboundMessage.subject == "Diskon hosting 90%")).scalar_one()
    assert spam.result == "created" and spam.ticket_id is not None
    for name in ("mail-01-inbound-log", "mail-02-ticket", "mail-03-log-entry"):
        assert (SHOTS / f"{name}.png").stat().st_size > 10_000
