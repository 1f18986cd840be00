"""The agent desk in a real browser: Debian Chromium, driven by Playwright, against the real app
served on a free port. Every step asserts what a person sees, and saves a full-page screenshot
under test-output/browser/ (the README uses them)."""
from datetime import timedelta

import pytest
from flask_babel import force_locale, gettext
from sqlalchemy import select

from helpdesk.extensions import db
from helpdesk.tickets import services, states
from helpdesk.tickets.models import Message, Ticket
from helpdesk.timeutil import utcnow
from helpdesk.web import STATUS_LABELS
from tests.browser.helpers import SHOTS, desk_page
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser

LOCALE = "en"  # the browser's Accept-Language; expected texts come from the app's catalog for it

MAIN_SUBJECT = "Website toko online error 500 sejak pagi"
MAIN_BODY = ("Selamat pagi, sejak jam 07.00 website toko kami (tokobatikayu.co.id) hanya menampilkan "
             "\"500 Internal Server Error\". Pelanggan tidak bisa checkout sama sekali. Mohon dibantu "
             "secepatnya, ini jam ramai pesanan.\n\nTerima kasih,\nBudi Santoso")
REPLY = ("Selamat pagi Pak Budi, terima kasih laporannya. Kami sudah menemukan penyebabnya: kuota disk "
         "hosting penuh sehingga PHP gagal menulis sesi. Kuota sudah kami naikkan dan website sudah bisa "
         "dibuka lagi. Mohon dicoba checkout sekali lagi dan kabari kami hasilnya.\n\nSalam,\nRina - Technical Support")


def _text(message, **kw):
    """A UI string as the app shows it in LOCALE."""
    with force_locale(LOCALE):
        return gettext(message, **kw)


def _label(status):
    with force_locale(LOCALE):
        return str(STATUS_LABELS[status])


def _seed(make):
    """Demo-like data: three departments, a technical-support agent and tickets from Indonesian customers."""
    tech = make.queue(slug="technical-support", name="Technical Support")
    cs = make.queue(slug="customer-support", name="Customer Support")
    billing = make.queue(slug="billing", name="Billing")
    agent = make.user(email="rina.wulandari@example.com", name="Rina Wulandari", roles=["technical_support"],
                      queues=[tech, cs])
    colleague = make.user(email="agus.prasetyo@example.com", name="Agus Prasetyo", roles=["technical_support"],
                          queues=[tech])
    make.user(email="dewi.lestari@example.com", name="Dewi Lestari", roles=["billing"], queues=[billing])
    org = make.organisation(name="PT Maju Jaya Abadi")
    budi = make.customer(name="Budi Santoso", email="budi@tokobatikayu.co.id")
    siti = make.customer(name="Siti Rahayu", email="siti.rahayu@majujaya.co.id", kind="b2b", organisation_id=org.id)
    made = make.customer(name="I Made Wirawan", email="made.wirawan@gmail.com")
    yuni = make.customer(name="Yuni Kartika", email="yuni.kartika@yahoo.co.id")
    hendra = make.customer(name="Hendra Gunawan", email="hendra@kopinusantara.id")
    now = utcnow()

    def ticket(customer, subject, body, hours_ago, **kw):
        return make.ticket(customer=customer, subject=subject, body=body, now=now - timedelta(hours=hours_ago), **kw)

    ticket(siti, "Email kantor tidak bisa menerima pesan dari luar",
           "Sejak kemarin sore email @majujaya.co.id tidak menerima email dari Gmail. Kirim keluar masih bisa.",
           26, queue=tech, channel="phone", priority="high")
    old = ticket(made, "Minta backup database WordPress sebelum update tema",
                 "Saya mau update tema minggu ini, tolong dibuatkan backup database dan file dulu.", 20,
                 queue=tech, channel="walk_in", priority="low")
    services.add_agent_message(old.id, colleague.id, body_text="Backup sudah kami jadwalkan malam ini pukul 22.00 WIB.",
                               now=now - timedelta(hours=18))
    services.assign(old.id, colleague.id, colleague.id, now=now - timedelta(hours=18))
    ticket(yuni, "Perpanjangan domain kartikabakery.com",
           "Domain saya habis bulan depan. Apakah bisa diperpanjang sekaligus 2 tahun?", 9, queue=cs, channel="chat")
    ticket(hendra, "Sertifikat SSL kedaluwarsa, browser menampilkan peringatan",
           "Pengunjung melihat 'Your connection is not private' di kopinusantara.id sejak tadi malam.", 5,
           queue=tech, channel="email", priority="urgent")
    ticket(siti, "Iklan Google Ads tidak tampil setelah top-up saldo",
           "Saldo iklan sudah kami top-up Rp 2.000.000 tapi iklan belum muncul juga.", 3, queue=cs, channel="social")
    done = ticket(budi, "Pemasangan sertifikat SSL untuk tokobatikayu.co.id",
                  "Mohon dipasangkan SSL supaya website kami tidak ditandai 'Not secure'.", 24 * 12, queue=tech)
    services.add_agent_message(done.id, colleague.id, status="resolved", now=now - timedelta(days=11),
                               body_text="SSL Let's Encrypt sudah terpasang dan diperpanjang otomatis.")
    main = ticket(budi, MAIN_SUBJECT, MAIN_BODY, 1, queue=tech, channel="email", priority="high")
    ticket(yuni, "Tagihan hosting terdebet dua kali", "Bulan ini saya ditagih dua kali untuk paket hosting.", 2,
           queue=billing, channel="email")  # not in Rina's queues: she must not see it
    db.session.commit()
    return {"agent": agent, "main_number": main.number, "main_id": main.id}


def test_agent_works_a_ticket_in_the_browser(app, make, live_server, browser, axe_source):
    from playwright.sync_api import expect

    seed = _seed(make)
    number = seed["main_number"]
    visible = db.session.execute(  # open tickets in her queues: what "All open" counts
        select(Ticket.id).where(Ticket.queue_id.in_(services.queue_ids_of(seed["agent"].id)),
                                Ticket.status.in_(states.OPEN_STATUSES))).scalars().all()
    context, page, watch, shot = desk_page(browser, live_server, axe_source)

    try:
        # Log in: the desk sends an anonymous visitor to the login page first.
        page.goto(live_server + "/")
        expect(page.get_by_role("heading", name=_text("Agent login"))).to_be_visible()
        page.get_by_label(_text("Email")).fill("rina.wulandari@example.com")
        page.get_by_label(_text("Password")).fill(PASSWORD)
        shot("01-login")
        page.get_by_role("button", name=_text("Log in")).click()

        # The queue: the ticket's subject and the number of open tickets she may see.
        expect(page.get_by_role("heading", name=_text("All open"))).to_be_visible()
        expect(page.locator("#ticket-count")).to_have_text(str(len(visible)))
        expect(page.get_by_role("link", name=MAIN_SUBJECT)).to_be_visible()
        expect(page.get_by_text("Budi Santoso").first).to_be_visible()
        expect(page.get_by_text("Tagihan hosting terdebet dua kali")).to_have_count(0)  # billing queue only
        watch.assert_clean("the queue page")
        shot("02-queue")

        # The ticket: the customer's message is on the page.
        page.get_by_role("link", name=MAIN_SUBJECT).click()
        expect(page).to_have_url(f"{live_server}/tickets/{number}")
        expect(page.get_by_role("heading", name=f"#{number} · {MAIN_SUBJECT}")).to_be_visible()
        thread = page.locator("#thread")
        expect(thread.get_by_text("500 Internal Server Error", exact=False)).to_be_visible()
        expect(thread.get_by_text("Budi Santoso").first).to_be_visible()
        expect(page.locator("#ticket-status")).to_have_text(_label("new"))
        expect(page.get_by_role("link", name="Budi Santoso")).to_be_visible()  # the customer sidebar
        expect(page.get_by_text("Pemasangan sertifikat SSL untuk tokobatikayu.co.id")).to_be_visible()
        watch.assert_clean("the ticket page")
        shot("03-ticket")

        # Reply: the text shows in the thread, with a success message.
        page.locator("#reply-body").fill(REPLY)
        page.get_by_role("button", name=_text("Send"), exact=True).click()
        expect(page.get_by_role("alert").filter(has_text=_text("Reply sent."))).to_be_visible()
        reply = thread.locator("article").last
        expect(reply).to_contain_text("kuota disk hosting penuh")
        expect(reply).to_contain_text("Rina Wulandari")
        expect(page.locator("#ticket-status")).to_have_text(_label("open"))
        watch.assert_clean("sending a reply")
        shot("04-reply")

        # Status: "Waiting for customer" through the Actions form; the badge shows the new label.
        page.locator("#status-select").select_option("pending_customer")
        page.get_by_role("button", name=_text("Set status")).click()
        expect(page.get_by_role("alert").filter(has_text=_text("Status changed."))).to_be_visible()
        expect(page.locator("#ticket-status")).to_have_text(_label("pending_customer"))
        watch.assert_clean("changing the status")
        shot("05-status")

        # One click switches the whole desk to Indonesian (and it stays so on the next page).
        page.get_by_role("link", name="Bahasa Indonesia").click()
        expect(page.locator("#ticket-status")).to_have_text("Menunggu pelanggan")
        page.goto(live_server + "/?view=all")
        expect(page.get_by_role("heading", name="Semua terbuka")).to_be_visible()
        expect(page.get_by_role("link", name=MAIN_SUBJECT)).to_be_visible()
        watch.assert_clean("the Indonesian queue page")
        shot("06-queue-id")
    finally:
        context.close()

    # What the person saw is also what was stored.
    db.session.remove()
    ticket = db.session.get(Ticket, seed["main_id"])
    assert ticket.status == "pending_customer"
    bodies = db.session.execute(select(Message.body_text).where(Message.ticket_id == ticket.id)
                                .order_by(Message.id)).scalars().all()
    assert bodies[-1].replace("\r\n", "\n") == REPLY
    for name in ("01-login", "02-queue", "03-ticket", "04-reply", "05-status", "06-queue-id"):
        assert (SHOTS / f"{name}.png").stat().st_size > 10_000
