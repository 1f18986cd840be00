"""The customer's whole path in a real browser (Debian Chromium, Playwright), once in Indonesian
and once in English: the public web form with an attachment, the confirmation with the ticket
number, the agent's reply on the desk, the magic sign-in link from the outbox mail, the reply seen
on the portal, the customer's answer, and the agent seeing it. Every page is checked for console
errors, requests to other hosts and axe-core violations; each page is saved as
test-output/browser/customer-<lang>-NN-<step>.png (the README's screenshots come from here)."""
import re

import pytest
from flask_babel import force_locale, gettext
from sqlalchemy import select

from helpdesk.extensions import db, mail
from helpdesk.tickets.models import Attachment, Message, Ticket
from tests.browser.helpers import SHOTS, PageWatch
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser

NAME = "Budi Santoso"
EMAIL = "budi@tokobatikayu.co.id"
SUBJECT = "Website toko online error 500 sejak pagi"
MESSAGE = ("Selamat pagi, sejak jam 07.00 website toko kami hanya menampilkan \"500 Internal Server Error\". "
           "Pelanggan tidak bisa checkout. Log error terlampir.\n\nTerima kasih,\nBudi")
FILE_NAME = "error-log.txt"
FILE_BODY = b"[29-Nov-2026 07:01:12 Asia/Jakarta] PHP Warning: session_start(): No space left on device\n"
REPLY = ("Selamat pagi Pak Budi, kuota disk hosting penuh sehingga PHP gagal menulis sesi. Kuota sudah kami "
         "naikkan. Mohon dicoba checkout sekali lagi.")
ANSWER = "Terima kasih, checkout sudah bisa lagi. Pesanan pertama hari ini baru saja masuk."
BROWSER_LOCALES = {"id": "id-ID", "en": "en-US"}


@pytest.mark.parametrize("lang", ["id", "en"])
def test_customer_path(lang, app, make, live_server, browser, axe_source, run_jobs):
    from playwright.sync_api import expect

    def t(message, **kw):
        """A UI string as the app shows it in `lang` (from the catalog)."""
        with force_locale(lang):
            return gettext(message, **kw)

    if lang == "id":  # the Indonesian run asserts the translated texts, not the English ones
        assert t("Thank you, we received your request") != "Thank you, we received your request"

    tech = make.queue(slug="technical-support", name="Technical Support")
    make.queue(slug="customer-support", name="Customer Support")
    make.user(email="rina.wulandari@example.com", name="Rina Wulandari", roles=["technical_support"], queues=[tech])
    db.session.commit()
    SHOTS.mkdir(parents=True, exist_ok=True)

    def context():
        return browser.new_context(viewport={"width": 1280, "height": 800}, locale=BROWSER_LOCALES[lang],
                                   timezone_id="Asia/Jakarta", service_workers="block")

    customer_ctx, agent_ctx = context(), context()
    customer, agent = customer_ctx.new_page(), agent_ctx.new_page()
    customer.set_default_timeout(15_000)
    agent.set_default_timeout(15_000)
    customer_watch = PageWatch(customer, live_server, axe_source)
    agent_watch = PageWatch(agent, live_server, axe_source)
    saved = []

    def done(page, watch, step):
        watch.assert_clean(step)
        saved.append(SHOTS / f"customer-{lang}-{len(saved) + 1:02d}-{step}.png")
        page.screenshot(path=str(saved[-1]), full_page=True)

    try:
        # 1. The public web form, with an attachment.
        customer.goto(f"{live_server}/form?lang={lang}")
        expect(customer.locator("html")).to_have_attribute("lang", lang)
        customer.get_by_label(t("Your name"), exact=True).fill(NAME)
        customer.get_by_label(t("Your email address"), exact=True).fill(EMAIL)
        customer.get_by_label(t("Phone or WhatsApp (optional)")).fill("0812 3456 7890")
        customer.get_by_label(t("What is it about?")).select_option(label=t("A problem with my website"))
        customer.get_by_label(t("Which website or domain? (optional)")).fill("tokobatikayu.co.id")
        customer.get_by_label(t("Subject"), exact=True).fill(SUBJECT)
        customer.get_by_label(t("Your message"), exact=True).fill(MESSAGE)
        customer.get_by_label(t("Attachments (optional)")).set_input_files(
            files=[{"name": FILE_NAME, "mimeType": "text/plain", "buffer": FILE_BODY}])
        done(customer, customer_watch, "form")
        customer.get_by_role("button", name=t("Send"), exact=True).click()

        # 2. The confirmation shows the ticket number.
        expect(customer.get_by_role("heading", name=t("Thank you, we received your request"))).to_be_visible()
        ticket = db.session.execute(select(Ticket).where(Ticket.subject == SUBJECT)).scalar_one()
        number, ticket_id = ticket.number, ticket.id
        expect(customer.get_by_text(t("Your ticket number is"))).to_contain_text(f"#{number}")
        done(customer, customer_watch, "confirmation")

        # 3. The agent logs in, finds it in the queue, opens it and replies.
        agent.goto(f"{live_server}/?lang={lang}")
        expect(agent.get_by_role("heading", name=t("Agent login"))).to_be_visible()
        agent.get_by_label(t("Email")).fill("rina.wulandari@example.com")
        agent.get_by_label(t("Password")).fill(PASSWORD)
        agent.get_by_role("button", name=t("Log in")).click()
        expect(agent.get_by_role("heading", name=t("All open"))).to_be_visible()
        expect(agent.get_by_role("link", name=SUBJECT)).to_be_visible()
        expect(agent.get_by_text(NAME).first).to_be_visible()
        done(agent, agent_watch, "agent-queue")
        agent.get_by_role("link", name=SUBJECT).click()
        expect(agent.get_by_role("heading", name=f"#{number} · {SUBJECT}")).to_be_visible()
        thread = agent.locator("#thread")
        expect(thread.get_by_text("500 Internal Server Error", exact=False)).to_be_visible()
        expect(thread.get_by_text(FILE_NAME)).to_be_visible()
        agent.locator("#reply-body").fill(REPLY)
        agent.get_by_role("button", name=t("Send"), exact=True).click()
        expect(agent.get_by_role("alert").filter(has_text=t("Reply sent."))).to_be_visible()
        expect(thread.locator("article").last).to_contain_text("kuota disk hosting penuh")
        done(agent, agent_watch, "agent-reply")

        # 4. The customer asks for a sign-in link and reads it from the mail the outbox sends.
        customer.goto(f"{live_server}/portal/login?lang={lang}")
        expect(customer.get_by_role("heading", name=t("Follow your requests"))).to_be_visible()
        customer.locator("#email").fill(EMAIL)  # the sign-in link form (the password form is folded away)
        done(customer, customer_watch, "portal-login")
        customer.get_by_role("button", name=t("Send me a sign-in link")).click()
        expect(customer.locator("#link-sent")).to_have_text(t(
            "If this address is known to us, we have just sent it a sign-in link. Open it on this device within "
            "%(minutes)d minutes. No email? Check your spam folder, or send us a request instead.",
            minutes=app.config["PORTAL_LINK_MAX_AGE"] // 60))
        with mail.record_messages() as outbox:
            run_jobs()
        links = [m for m in outbox if m.recipients == [EMAIL] and "/portal/login/" in m.body]
        assert len(links) == 1, [m.subject for m in outbox]
        path = re.search(r"https?://[^/\s]+(/portal/login/\S+)", links[0].body).group(1)

        # 5. Opening the link shows a button (mail scanners open links too); the click signs in.
        customer.goto(live_server + path)
        expect(customer.get_by_role("heading", name=t("Hello %(name)s", name=NAME))).to_be_visible()
        expect(customer.get_by_text(t("Press the button to sign in and see your requests."))).to_be_visible()
        done(customer, customer_watch, "sign-in-link")
        customer.get_by_role("button", name=t("Sign in")).click()
        expect(customer.get_by_role("heading", name=t("My requests"))).to_be_visible()
        done(customer, customer_watch, "portal-requests")

        # 6. The customer sees the agent's reply, and answers.
        customer.get_by_role("link", name=f"#{number} · {SUBJECT}").click()
        expect(customer.get_by_role("heading", name=f"#{number} · {SUBJECT}")).to_be_visible()
        portal_thread = customer.locator("#thread")
        expect(portal_thread.locator("article").last).to_contain_text("kuota disk hosting penuh")
        expect(portal_thread.locator("article").last).to_contain_text(t("Our team") + " (Rina Wulandari)")
        expect(portal_thread.get_by_role("link", name=FILE_NAME)).to_be_visible()
        done(customer, customer_watch, "portal-ticket")
        customer.get_by_label(t("Your message"), exact=True).fill(ANSWER)
        customer.get_by_role("button", name=t("Send"), exact=True).click()
        expect(customer.get_by_role("alert").filter(has_text=t("Your message was sent."))).to_be_visible()
        expect(portal_thread.locator("article").last).to_contain_text(ANSWER)
        done(customer, customer_watch, "portal-answer")

        # The customer's other pages pass the same checks (axe, console, hosts): profile, my data,
        # and the embeddable form.
        customer.goto(f"{live_server}/portal/profile")
        expect(customer.get_by_role("heading", level=1, name=t("My details"))).to_be_visible()
        done(customer, customer_watch, "portal-profile")
        customer.goto(f"{live_server}/portal/my-data")
        expect(customer.get_by_role("heading", level=1, name=t("My data"))).to_be_visible()
        done(customer, customer_watch, "portal-my-data")
        customer.goto(f"{live_server}/form/embed")
        expect(customer.get_by_role("heading", level=1, name=t("Contact us"))).to_be_visible()
        done(customer, customer_watch, "form-embed")

        # 7. The agent sees the answer on the ticket page.
        agent.reload()
        expect(agent.locator("#thread article").last).to_contain_text(ANSWER)
        expect(agent.locator("#thread article").last).to_contain_text(NAME)
        done(agent, agent_watch, "agent-sees-answer")
    finally:
        customer_ctx.close()
        agent_ctx.close()

    # What the people saw is also what was stored.
    db.session.remove()
    bodies = db.session.execute(select(Message.body_text).where(Message.ticket_id == ticket_id)
                                .order_by(Message.id)).scalars().all()
    bodies = [b.replace("\r\n", "\n") for b in bodies]
    assert bodies[0].startswith(MESSAGE) and "tokobatikayu.co.id" in bodies[0]  # the form adds website and phone
    assert bodies[1:] == [REPLY, ANSWER]
    stored = db.session.execute(select(Attachment).where(Attachment.ticket_id == ticket_id)).scalars().all()
    assert [a.filename for a in stored] == [FILE_NAME]
    assert len(saved) == 13 and all(p.stat().st_size > 10_000 for p in saved)
